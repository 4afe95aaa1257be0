//! MD5 (RFC 1321), for what dpkg records with it: the hashes of a
//! package's conffiles in the `Conffiles` field of its status, which dpkg
//! compares on upgrade to tell a file the administrator changed. Never used
//! to verify anything: downloads are verified by SHA-256.

/// The per-round shift amounts.
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5,
    9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6,
    10, 15, 21, 6, 10, 15, 21,
];

/// An incremental MD5 computation.
#[derive(Debug, Clone)]
pub struct Md5 {
    state: [u32; 4],
    buffer: Vec<u8>,
    length: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Md5 { state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476], buffer: Vec::new(), length: 0 }
    }
}

impl Md5 {
    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        self.buffer.extend_from_slice(data);
        let full = self.buffer.len() / 64 * 64;
        for block in self.buffer[..full].chunks_exact(64) {
            compress(&mut self.state, block);
        }
        self.buffer.drain(..full);
    }

    /// The digest as 32 lowercase hex digits, as dpkg writes it.
    pub fn hex(mut self) -> String {
        let bits = self.length.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.buffer);
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_le_bytes());
        for block in tail.chunks_exact(64) {
            compress(&mut self.state, block);
        }
        let bytes: Vec<u8> = self.state.iter().flat_map(|w| w.to_le_bytes()).collect();
        forge_digest::hex(&bytes)
    }
}

/// The MD5 of `data`, as 32 lowercase hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    let mut md5 = Md5::default();
    md5.update(data);
    md5.hex()
}

fn compress(state: &mut [u32; 4], block: &[u8]) {
    let m: Vec<u32> = block.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
    let [mut a, mut b, mut c, mut d] = *state;
    for (i, shift) in S.iter().enumerate() {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        // K[i] = floor(abs(sin(i + 1)) * 2^32), as RFC 1321 defines it.
        let k = ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32;
        let rotated = a.wrapping_add(f).wrapping_add(k).wrapping_add(m[g]).rotate_left(*shift);
        (a, d, c) = (d, c, b);
        b = b.wrapping_add(rotated);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_1321_test_suite() {
        let cases: &[(&str, &str)] = &[
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(md5_hex(input.as_bytes()), *expected, "{input:?}");
        }
    }

    #[test]
    fn pieces_give_the_same_digest() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut md5 = Md5::default();
        for piece in data.chunks(37) {
            md5.update(piece);
        }
        assert_eq!(md5.hex(), md5_hex(&data));
    }
}
