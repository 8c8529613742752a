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
    /// `licenses/consumption` answers a `filter` of more than one comparison (`endTime ge
    /// "A" and endTime lt "B"`) with 400 "Invalid filter". Qlik documents the listing's filter
    /// only as "the SCIM filter; filterable property is endTime" and shows no compound
    /// example (https://qlik.dev/apis/rest/licenses), so a tenant may refuse one; a client
    /// must then fall back to the single documented `endTime ge` comparison.
    pub compound_filters_refused: bool,
    /// `/v1/users` ignores `sort` and lists users in its default order, by name. Qlik
    /// documents `sort` (https://qlik.dev/apis/rest/users), but a client that relies on
    /// the order it asked for (reading a listing from both ends) must notice when it is not
    /// given and read the listing one way.
    pub users_sort_ignored: bool,
}
