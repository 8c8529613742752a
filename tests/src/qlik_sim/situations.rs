//! Situations a real tenant gets into now and then, each behind its own switch so a test
//! chooses when to face it. What Qlik always does (orphans in the plain assignment listing,
//! position-only licence links, the 5-minute rate-limit window, late and tied consumption
//! events, a non-admin key's narrower view) is not a situation: the simulator always does it.

/// Situations to reproduce; the default reproduces none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Situations {
    /// One space (the first after space 0 that has members) is deleted between the spaces
    /// listing and its assignments call: it is listed, and its assignments answer 404
    /// "Space not found or access denied", as Qlik answers for a space that is gone or hidden
    /// (https://qlik.dev/apis/rest/spaces).
    pub space_deleted_mid_run: bool,
    /// Once the first page of a users listing in name order is served, two users are renamed:
    /// the last in name order now sorts first and the first sorts last. A client paging by
    /// name (Qlik's default order, https://qlik.dev/apis/rest/users) then reads one user twice
    /// and misses another; paging with `sort=+id` is unaffected.
    pub rename_during_users_listing: bool,
    /// Licence assignment rows vary in shape as real responses and Qlik's own examples do
    /// (https://qlik.dev/apis/rest/licenses): every fourth row of a current user carries
    /// `userId` and `name`, and every ninth row (orphans included) has no `type`.
    pub assignment_shape_variants: bool,
}
