//! Dense ids for repeated names (store names): a purchase stores a u32, and
//! the names live once in a `Vec<String>` owned by the table that needs them.

use std::collections::HashMap;

/// Maps names to their index in a names vector it appends to.
#[derive(Debug, Default)]
pub struct Interner {
    /// foldhash: asked once per purchase, where SipHash showed in profiles.
    ids: HashMap<String, u32, foldhash::fast::RandomState>,
}

impl Interner {
    /// The id of `name` in `names`, pushing it there the first time.
    pub fn id(&mut self, names: &mut Vec<String>, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = names.len() as u32;
        names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let (mut i, mut names) = (Interner::default(), Vec::new());
        let ids: Vec<u32> = ["b", "a", "b", "c", "a"]
            .iter()
            .map(|n| i.id(&mut names, n))
            .collect();
        assert_eq!(ids, [0, 1, 0, 2, 1]);
        assert_eq!(names, ["b", "a", "c"]);
    }
}
