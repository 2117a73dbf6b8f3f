//! PostgreSQL's binary COPY format, written in large chunks.
//!
//! tokio-postgres's `BinaryCopyInWriter` sends every 4 KiB it has encoded,
//! and each send waits for the connection task to take it: at a million
//! customers, 130,000 cross-thread hand-offs and socket writes for 520 MB
//! of rows, most of the client's kernel time in the load. This writer
//! encodes the same bytes (header, rows, trailer: see the COPY page of the
//! PostgreSQL manual, "Binary Format") and sends them `CHUNK` at a time.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use postgres_types::{BorrowToSql, IsNull, Type};
use tokio_postgres::CopyInSink;

/// Bytes encoded before they go to the connection: big enough that the
/// hand-off is rare, small enough that the server starts on the rows soon.
const CHUNK: usize = 256 * 1024;

/// The 11-byte signature, the flags (no OIDs) and an empty header extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Why a row could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// A value's own encoding refused it (column index, reason).
    Value(usize, String),
    /// The connection failed.
    Copy(tokio_postgres::Error),
}

pub struct BinaryWriter<'a> {
    sink: std::pin::Pin<Box<CopyInSink<Bytes>>>,
    types: &'a [Type],
    buf: BytesMut,
}

impl<'a> BinaryWriter<'a> {
    pub fn new(sink: CopyInSink<Bytes>, types: &'a [Type]) -> BinaryWriter<'a> {
        let mut buf = BytesMut::with_capacity(CHUNK + 4096);
        buf.put_slice(HEADER);
        BinaryWriter {
            sink: Box::pin(sink),
            types,
            buf,
        }
    }

    /// One row; `values` has one value per type given to `new`, in order.
    pub async fn write<T: BorrowToSql>(&mut self, values: &[T]) -> Result<(), WriteError> {
        put_row(&mut self.buf, self.types, values)?;
        if self.buf.len() >= CHUNK {
            let chunk = self.buf.split().freeze();
            self.sink.send(chunk).await.map_err(WriteError::Copy)?;
        }
        Ok(())
    }

    /// The trailer and the rest of the rows; the server's row count.
    pub async fn finish(mut self) -> Result<u64, tokio_postgres::Error> {
        self.buf.put_i16(-1);
        let rest = self.buf.split().freeze();
        self.sink.send(rest).await?;
        self.sink.as_mut().finish().await
    }
}

/// Append one row: its field count, then each field's length (-1 for
/// NULL) and bytes.
fn put_row<T: BorrowToSql>(
    buf: &mut BytesMut,
    types: &[Type],
    values: &[T],
) -> Result<(), WriteError> {
    debug_assert_eq!(values.len(), types.len());
    // A table has at most a few dozen columns (DESIGN §5).
    buf.put_i16(values.len() as i16);
    for (i, (value, ty)) in values.iter().zip(types).enumerate() {
        let at = buf.len();
        buf.put_i32(0);
        let len = match value
            .borrow_to_sql()
            .to_sql_checked(ty, buf)
            .map_err(|e| WriteError::Value(i, e.to_string()))?
        {
            IsNull::Yes => -1,
            IsNull::No => i32::try_from(buf.len() - at - 4)
                .map_err(|_| WriteError::Value(i, "longer than 2 GiB".to_owned()))?,
        };
        buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use postgres_types::ToSql;

    use super::*;

    /// A row is its field count, then per field a big-endian length (-1
    /// for NULL) and the value's bytes, as the manual's "Binary Format"
    /// describes; spelled out by hand for an int, a NULL and a text.
    #[test]
    fn row_is_field_count_then_length_prefixed_fields() {
        let mut buf = BytesMut::new();
        let values: [&(dyn ToSql + Sync); 3] = [&7i32, &None::<i32>, &"ab"];
        put_row(&mut buf, &[Type::INT4, Type::INT4, Type::TEXT], &values).expect("encode");
        let want: &[u8] = &[
            0, 3, // fields
            0, 0, 0, 4, 0, 0, 0, 7, // 7
            0xff, 0xff, 0xff, 0xff, // NULL
            0, 0, 0, 2, b'a', b'b', // "ab"
        ];
        assert_eq!(&buf[..], want);
    }

    /// A value of the wrong type is refused with its column, not sent.
    #[test]
    fn wrong_type_names_the_column() {
        let mut buf = BytesMut::new();
        let values: [&(dyn ToSql + Sync); 2] = [&1i32, &"x"];
        let err = put_row(&mut buf, &[Type::INT4, Type::INT4], &values).expect_err("refused");
        assert!(matches!(err, WriteError::Value(1, _)), "{err:?}");
    }

    #[test]
    fn header_is_signature_zero_flags_and_empty_extension() {
        assert_eq!(HEADER.len(), 19);
        assert_eq!(&HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        assert!(HEADER[11..].iter().all(|&b| b == 0));
    }
}
