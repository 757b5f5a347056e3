//! Writing the Prometheus text format (0.0.4) straight into a byte buffer.
//!
//! Built for the scrape path over ~100,000 partitions: label values are escaped while
//! being copied and numbers are formatted on the stack, so writing a sample allocates
//! nothing beyond the output buffer's growth. The lag families write a line's fixed part
//! (name and labels up to the partition number) once per group and topic with [`open`]
//! and [`label`], then copy it per partition.

use std::io::Write;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's name, type and help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

/// Writes the `# HELP` and `# TYPE` lines.
pub fn header(out: &mut Vec<u8>, family: &Family) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(family.name.as_bytes());
    out.push(b' ');
    escape_help(out, family.help);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(family.name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(family.kind.as_bytes());
    out.push(b'\n');
}

/// A sample value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

/// Writes one sample line: `name{l1="v1",...} value`.
pub fn sample(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], value: Value) {
    if labels.is_empty() {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
    } else {
        open(out, name, labels);
        out.extend_from_slice(b"} ");
    }
    write_value(out, value);
    out.push(b'\n');
}

/// Writes the start of a sample line up to its last label, without the closing brace:
/// `name{l1="v1",...,ln="vn"`. `labels` must not be empty.
pub fn open(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_label_value(out, v);
        out.push(b'"');
    }
}

/// Appends one more label to a line [`open`]ed: `,name="value"`.
pub fn label(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b',');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(out, value);
    out.push(b'"');
}

/// Writes a sample value.
pub fn write_value(out: &mut Vec<u8>, value: Value) {
    match value {
        Value::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::Float(v) => write_float(out, v),
    }
}

/// Formats a float as Prometheus parses it (`+Inf`, `-Inf`, `NaN`, else the shortest
/// decimal that reads back as the same number, as std's `{}` writes it: never an
/// exponent).
pub fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        let mut ryu = ryu::Buffer::new();
        match shortest_as_std(&mut ryu, v) {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            // Writing to a Vec cannot fail.
            None => drop(write!(out, "{v}")),
        }
    }
}

/// The shortest decimal of a finite, non-integer `v` by Ryū, where it is what std's `{}`
/// writes: several times faster than std. Both write the shortest digits that read back
/// as `v`, the closest to it; they differ only in notation outside `1e-5..1e15` (Ryū
/// writes an exponent) and on exact ties, which std breaks either way and Ryū to even (a
/// tie: `v` is exactly halfway between the two closest shortest decimals, that is its
/// exact binary expansion ends one decimal place after the shortest's last digit). Both
/// cases are left to std.
fn shortest_as_std(ryu: &mut ryu::Buffer, v: f64) -> Option<&str> {
    if !(1e-5..1e15).contains(&v.abs()) {
        return None;
    }
    let text = ryu.format_finite(v);
    let decimals = text.len() - text.find('.')? - 1;
    // v = mantissa × 2^exponent, normal in this range; the lowest set bit's place is
    // the number of decimals of v's exact expansion.
    let bits = v.to_bits();
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1075;
    let lowest = exponent + mantissa.trailing_zeros() as i32;
    (-lowest != decimals as i32 + 1).then_some(text)
}

/// Escapes `\`, `"` and newline in a label value.
pub fn escape_label_value(out: &mut Vec<u8>, v: &str) {
    let bytes = v.as_bytes();
    if memchr::memchr3(b'\\', b'"', b'\n', bytes).is_none() {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Escapes `\` and newline in help text.
fn escape_help(out: &mut Vec<u8>, help: &str) {
    for &b in help.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_std_writes_them() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut out = Vec::new();
        let mut check = |v: f64| {
            out.clear();
            write_float(&mut out, v);
            let want = if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            };
            assert_eq!(std::str::from_utf8(&out).unwrap(), want, "{v:e}");
        };
        // The edges of the range written by Ryū, and typical values: seconds with
        // milliseconds, time lags, rates.
        for v in [
            1e-5,
            0.99999e-5,
            1.00001e-5,
            1e15,
            999_999_999_999_999.9,
            0.1,
            0.3,
            1.5,
            1_699_999_000.123,
            2.5e-3,
            123_456.789_012_345_6,
            5e-324,
            f64::MAX,
            f64::MIN,
            // Exact ties between two shortest decimals, which std and Ryū break apart.
            93_986_249_578_760.0 + 0.625,
            1.0 + 1.0 / 131_072.0,
        ] {
            check(v);
            check(-v);
        }
        for _ in 0..200_000 {
            // Random bits over every exponent, then values as the exporter makes them.
            check(f64::from_bits(rng.u64(..)));
            check(rng.f64() * 10f64.powi(rng.i32(-8..17)));
            check(rng.i64(1_600_000_000_000..1_800_000_000_000) as f64 / 1000.0);
            check(rng.u32(..10_000_000) as f64 / 1000.0);
        }
    }

    #[test]
    fn samples_escape_labels_and_format_numbers() {
        let mut out = Vec::new();
        header(
            &mut out,
            &Family {
                name: "m",
                kind: "gauge",
                help: "a\\b\nc",
            },
        );
        sample(
            &mut out,
            "m",
            &[("a", "x\"y\\z\nw"), ("b", "1")],
            Value::Int(-5),
        );
        sample(&mut out, "m", &[], Value::Float(0.25));
        sample(&mut out, "m", &[], Value::Float(f64::INFINITY));
        sample(&mut out, "m", &[], Value::Float(f64::NAN));
        sample(&mut out, "m", &[], Value::Float(1_700_000_000.0));
        // A line opened once and finished per partition, as the lag families write it.
        let mut line = Vec::new();
        open(&mut line, "m", &[("g", "a\"b")]);
        label(&mut line, "topic", "t\\u");
        out.extend_from_slice(&line);
        out.extend_from_slice(b"} 7\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP m a\\\\b\\nc\n# TYPE m gauge\n\
             m{a=\"x\\\"y\\\\z\\nw\",b=\"1\"} -5\nm 0.25\nm +Inf\nm NaN\nm 1700000000\n\
             m{g=\"a\\\"b\",topic=\"t\\\\u\"} 7\n"
        );
    }
}
