//! Property test: whatever TOML text a config file holds (well formed or not, the key in
//! every shape and place a person might put it), the loader neither panics nor shows the
//! key, or the destination URL's password, in its error or in the loaded config's `Debug`.

use connector_api::secret::PIECE_LEN;
use host::config_file::ConfigFile;
use proptest::prelude::*;
use qlik_connector as _;

/// One line of a config file, some of them carrying `key` or `password`.
fn line(key: String, password: String) -> impl Strategy<Value = String> {
    let with_key = [
        format!("api_key = \"{key}\""),
        format!("api_key = '{key}'"),
        format!("api_key = \"{key}"),
        format!("api_key = \"{key}\\q\""),
        format!("api_key = [\"{key}\"]"),
        format!("api_key = {{ value = \"{key}\" }}"),
        format!("api_key = {{ file = \"key\", env = \"X\", extra = \"{key}\" }}"),
        format!("api_key = \"\"\"\n{key}\n\"\"\""),
        format!("api_key = \"{key}\"\napi_key = \"{key}\""),
        format!("api_key = \"  {key}  \" # trailing"),
        format!("destination = \"postgres://hub:{password}@h1,h2/hub\""),
        format!("destination = \"postgres://hub@h:99999/hub?password={password}\""),
    ];
    prop_oneof![
        3 => prop::sample::select(with_key.to_vec()),
        1 => Just("connector = \"qlik-sense\"".to_string()),
        1 => Just("[config]".to_string()),
        1 => Just("tenant_url = \"https://acme.eu.qlikcloud.com\"".to_string()),
        1 => "connector = \"[a-z-]{0,12}\"",
        1 => "\\[[a-z_.]{0,10}\\]",
        1 => "[a-z_]{1,12} = [0-9a-z\"\\[\\]{}.,=-]{0,12}",
        1 => "[ -~]{0,40}",
    ]
}

/// A config file: lines in any order, usually starting like a real one.
fn config_text() -> impl Strategy<Value = (String, String, String)> {
    ("[A-Za-z0-9_-]{20,40}", "[A-Za-z0-9]{12,20}").prop_flat_map(|(key, password)| {
        let key = format!("cfg-key-{key}");
        let password = format!("pw-{password}");
        let lines = prop::collection::vec(line(key.clone(), password.clone()), 0..10);
        (prop::bool::weighted(0.7), lines).prop_map(move |(header, lines)| {
            let start = if header { "connector = \"qlik-sense\"\n[config]\n" } else { "" };
            (format!("{start}{}", lines.join("\n")), key.clone(), password.clone())
        })
    })
}

/// The first piece of `secret` ([`PIECE_LEN`] characters) that `text` shows.
fn shown_piece<'a>(text: &str, secret: &'a str) -> Option<&'a str> {
    (0..=secret.len().saturating_sub(PIECE_LEN))
        .map(|i| &secret[i..(i + PIECE_LEN).min(secret.len())])
        .find(|p| text.contains(p))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_config_text_neither_panics_nor_shows_the_key((text, key, password) in config_text()) {
        let registry = connector_api::registry::registry().unwrap();
        let shown = match ConfigFile::parse(&text, "fuzz.toml", &std::env::temp_dir(), &registry) {
            Ok(config) => format!("{config:?}"),
            Err(err) => format!("{err}\n{err:?}"),
        };
        for secret in [&key, &password] {
            if let Some(piece) = shown_piece(&shown, secret) {
                prop_assert!(false, "`{}` of a secret shows for:\n{}\n---\n{}", piece, text, shown);
            }
        }
    }
}
