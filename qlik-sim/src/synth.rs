//! Deterministic building blocks: every entity is derived from `(seed, kind, index)` by
//! hashing, so a tenant of any size needs no storage and the same seed gives the same tenant.

use time::OffsetDateTime;
use time::macros::format_description;

/// Entity kinds, mixed into every hash so ids of different kinds never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    User = 1,
    Group = 2,
    Role = 3,
    Space = 4,
    SpaceAssignment = 5,
    App = 6,
    Assignment = 7,
    Orphan = 8,
    Event = 9,
    ApiKey = 10,
    Tenant = 11,
    License = 12,
    OAuthClient = 13,
    Audit = 14,
}

/// SplitMix64 finaliser: a fast, well-distributed 64-bit mix.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The hash of one attribute (`salt`) of entity `i` of `kind`.
pub(crate) fn h(seed: u64, kind: Kind, i: u64, salt: u64) -> u64 {
    mix(mix(mix(seed ^ ((kind as u64) << 56)) ^ i) ^ salt.wrapping_mul(0x2545_F491_4F6C_DD1D))
}

/// A Qlik-style 24-hex object id that encodes its index, so a cursor or path id maps back to
/// the entity in O(1) without any lookup table.
pub(crate) fn object_id(seed: u64, kind: Kind, i: u64) -> String {
    let mask = h(seed, kind, u64::MAX, 1) as u32;
    let head = (i as u32) ^ mask;
    let tail = h(seed, kind, i, 2);
    format!("{head:08x}{tail:016x}")
}

/// The index of an id made by [`object_id`], if it is one of the first `n` of `kind`.
pub(crate) fn decode_id(seed: u64, kind: Kind, id: &str, n: u64) -> Option<u64> {
    if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let head = u32::from_str_radix(&id[..8], 16).ok()?;
    let i = u64::from(head ^ h(seed, kind, u64::MAX, 1) as u32);
    (i < n && object_id(seed, kind, i) == id.to_ascii_lowercase()).then_some(i)
}

/// A version-4-shaped UUID derived from the entity.
pub(crate) fn uuid(seed: u64, kind: Kind, i: u64, salt: u64) -> String {
    let a = h(seed, kind, i, salt);
    let b = h(seed, kind, i, salt ^ 0xABCD);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A string of `len` characters from `[A-Za-z0-9]`, derived from the entity.
pub(crate) fn alnum(seed: u64, kind: Kind, i: u64, salt: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|k| ALPHABET[(h(seed, kind, i, salt.wrapping_add(k as u64 * 7919)) % 62) as usize] as char)
        .collect()
}

/// 2021-03-01T00:00:00Z: the synthetic tenant's creation, the floor of every timestamp.
pub(crate) const TENANT_CREATED_MS: i64 = 1_614_556_800_000;
/// 2025-11-01T00:00:00Z: the first consumption event.
pub(crate) const CONSUMPTION_START_MS: i64 = 1_761_955_200_000;
/// 2026-11-01T00:00:00Z: the data's "now" (fixed, so a seed always gives the same data).
pub(crate) const DATA_NOW_MS: i64 = 1_793_491_200_000;

/// A timestamp `offset_ms` after tenant creation, uniformly spread up to the data's "now".
pub(crate) fn spread_ms(hash: u64) -> i64 {
    TENANT_CREATED_MS + (hash % (DATA_NOW_MS - TENANT_CREATED_MS) as u64) as i64
}

/// RFC 3339 with milliseconds and `Z`, as Qlik writes timestamps.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("simulator timestamps are in range");
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
        .expect("the format is valid")
}

/// The UTC date of `ms` (`YYYY-MM-DD`), for fields the definitions declare `format: date`.
pub(crate) fn date_only(ms: i64) -> String {
    rfc3339_ms(ms)[..10].to_owned()
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub(crate) fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Picks from `items` by `hash`.
pub(crate) fn pick<T: Copy>(items: &[T], hash: u64) -> T {
    items[(hash % items.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_foreign_ids() {
        for i in [0, 1, 99, 123_456] {
            let id = object_id(7, Kind::User, i);
            assert_eq!(id.len(), 24);
            assert_eq!(decode_id(7, Kind::User, &id, 200_000), Some(i));
            assert_eq!(decode_id(7, Kind::Group, &id, 200_000), None);
            assert_eq!(decode_id(8, Kind::User, &id, 200_000), None);
        }
        assert_eq!(decode_id(7, Kind::User, &object_id(7, Kind::User, 10), 10), None);
    }

    #[test]
    fn timestamps_round_trip() {
        let s = rfc3339_ms(CONSUMPTION_START_MS + 1234);
        assert_eq!(s, "2025-11-01T00:00:01.234Z");
        assert_eq!(parse_rfc3339_ms(&s), Some(CONSUMPTION_START_MS + 1234));
    }
}
