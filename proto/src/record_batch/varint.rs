//! Zig-zag LEB128 varints, as Kafka's records use them.

pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(crate) fn varint_len(value: i32) -> usize {
    varlong_len(i64::from(value))
}

pub(crate) fn varlong_len(value: i64) -> usize {
    let bits = 64 - (zigzag(value) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, value: i32) {
    put_varlong(buf, i64::from(value));
}

pub(crate) fn put_varlong(buf: &mut Vec<u8>, value: i64) {
    let mut value = zigzag(value);
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// A length-prefixed byte string, -1 for null.
pub(crate) fn put_nullable(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            put_varint(buf, bytes.len() as i32);
            buf.extend_from_slice(bytes);
        }
        None => put_varint(buf, -1),
    }
}

pub(crate) fn nullable_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        Some(bytes) => varint_len(bytes.len() as i32) + bytes.len(),
        None => 1,
    }
}

/// Reads a varlong at the start of `bytes`: (value, bytes read), `None` if
/// it runs past the end or past 10 bytes.
pub(crate) fn read_varlong(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((((value >> 1) as i64) ^ -((value & 1) as i64), i + 1));
        }
    }
    None
}
