//! `Cents`: money as an exact count of cents, written in PostgreSQL's binary
//! NUMERIC format so binary COPY can fill `NUMERIC(p,2)` columns without a
//! decimal crate. Only encoding lives here; rounding f64 to cents is
//! [`Cents::from_f64`].

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};

/// An amount of money in cents (scale 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cents(pub i64);

impl Cents {
    /// Round to the nearest cent; `None` for NaN/∞ or amounts beyond i64 cents.
    pub fn from_f64(x: f64) -> Option<Cents> {
        let cents = (x * 100.0).round();
        // `as` saturates, so check the range first to refuse rather than clamp.
        (cents.is_finite() && cents.abs() < 9.0e18).then_some(Cents(cents as i64))
    }
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

impl ToSql for Cents {
    /// Wire format (numeric.c `numeric_send`): ndigits, weight, sign, dscale
    /// as 16-bit integers, then ndigits base-10000 digits, most significant
    /// first; `weight` is the power of 10000 of the first digit.
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let abs = self.0.unsigned_abs();
        let (int, frac) = (abs / 100, abs % 100);
        // At most 5 integer digits for an i64 and one for the cents, on the
        // stack: this runs for every money cell of a COPY.
        let mut digits = [0i16; 6];
        let mut n = 0;
        let mut rest = int;
        while rest > 0 {
            digits[n] = (rest % 10_000) as i16;
            n += 1;
            rest /= 10_000;
        }
        digits[..n].reverse();
        let weight = n as i16 - 1;
        // The two decimals fill the first fractional base-10000 digit: .07 → 0700.
        digits[n] = (frac * 100) as i16;
        n += 1;
        // Normalize as PostgreSQL does: no trailing zero digits.
        while n > 0 && digits[n - 1] == 0 {
            n -= 1;
        }
        let (weight, sign) = if n == 0 {
            (0, NUMERIC_POS)
        } else {
            (weight, if self.0 < 0 { NUMERIC_NEG } else { NUMERIC_POS })
        };
        out.reserve(8 + 2 * n);
        out.put_i16(n as i16);
        out.put_i16(weight);
        out.put_u16(sign);
        out.put_u16(2);
        for &d in &digits[..n] {
            out.put_i16(d);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(c: i64) -> Vec<u8> {
        let mut buf = BytesMut::new();
        Cents(c).to_sql(&Type::NUMERIC, &mut buf).expect("encode");
        buf.to_vec()
    }

    #[test]
    fn known_encodings() {
        // 0 → no digits, dscale 2.
        assert_eq!(encode(0), [0, 0, 0, 0, 0, 0, 0, 2]);
        // 12345.67 → digits [1, 2345, 6700], weight 1.
        assert_eq!(
            encode(1_234_567),
            [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c]
        );
        // -0.05 → digits [500], weight -1, negative.
        assert_eq!(encode(-5), [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4]);
        // 10000.00 → digits [1], weight 1 (trailing zeros stripped).
        assert_eq!(encode(1_000_000), [0, 1, 0, 1, 0, 0, 0, 2, 0, 1]);
    }

    /// What PostgreSQL itself makes of our bytes: `numeric_recv` validates
    /// the digits, and `::text` prints what it understood.
    #[test]
    fn postgres_reads_what_we_write() {
        let url = std::env::var("SEGPIPE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let values = [
            0,
            1,
            -1,
            5,
            -5,
            10,
            99,
            100,
            -100,
            10_001,
            999_999,
            1_000_000,
            100_000_000,
            123_456_789,
            99_999_999_999_999,
            -99_999_999_999_999,
            i64::MAX,
            i64::MIN + 1,
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL unreachable at {}: {e}; start it with \
                     `pg_ctlcluster --skip-systemctl-redirect 15 main start`",
                        crate::secret::DatabaseUrl::new(url.clone())
                    )
                });
            tokio::spawn(conn);
            let stmt = client
                .prepare("SELECT $1::numeric::text")
                .await
                .expect("prepare");
            for c in values {
                let got: String = client
                    .query_one(&stmt, &[&Cents(c)])
                    .await
                    .expect("query")
                    .get(0);
                let abs = c.unsigned_abs();
                let want = format!(
                    "{}{}.{:02}",
                    if c < 0 { "-" } else { "" },
                    abs / 100,
                    abs % 100
                );
                assert_eq!(got, want, "cents {c}");
            }
        });
    }

    #[test]
    fn rounds_to_cents_and_refuses_non_finite() {
        assert_eq!(Cents::from_f64(12.345_000_1), Some(Cents(1235)));
        assert_eq!(Cents::from_f64(-0.004), Some(Cents(0)));
        assert_eq!(Cents::from_f64(1e300), None);
        assert_eq!(Cents::from_f64(f64::NAN), None);
    }
}
