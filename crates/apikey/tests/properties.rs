//! Property tests: generation, checksum and parsing; no input panics the parser or
//! `verify` (the same property as the fuzz target `fuzz/fuzz_targets/apikey_parse.rs`).

#![allow(clippy::unwrap_used)] // Strategies and properties: a panic is a failing test.

use palisade_apikey::{ApiKeys, Environment, ErrorKind, KeyFormat, MemoryKeyStore};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn format_strategy() -> impl Strategy<Value = KeyFormat> {
    ("[a-z][a-z0-9]{0,11}", prop::bool::ANY).prop_map(|(kind, live)| {
        let env = if live {
            Environment::Live
        } else {
            Environment::Test
        };
        KeyFormat::new(&kind, env).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_keys_always_parse(format in format_strategy(), seed in any::<u64>()) {
        let key = format.generate_with(&mut StdRng::seed_from_u64(seed));
        let raw = key.expose_secret();
        prop_assert!(raw.starts_with(format.prefix()));
        prop_assert_eq!(raw.len(), format.prefix().len() + 49);
        prop_assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let parsed = format.parse(raw).unwrap();
        prop_assert_eq!(parsed.environment(), format.environment());
    }

    #[test]
    fn any_substitution_or_transposition_is_rejected(
        seed in any::<u64>(),
        position in 8usize..57,
        replacement in "[0-9A-Za-z]",
    ) {
        let format = KeyFormat::default();
        let key = format.generate_with(&mut StdRng::seed_from_u64(seed));
        let mut chars: Vec<char> = key.expose_secret().chars().collect();
        let new = replacement.chars().next().unwrap();
        prop_assume!(chars[position] != new);
        chars[position] = new;
        let mutated: String = chars.iter().collect();
        prop_assert_eq!(format.parse(&mutated).unwrap_err().kind(), ErrorKind::Malformed);

        let mut swapped: Vec<char> = key.expose_secret().chars().collect();
        prop_assume!(swapped[position] != swapped[position - 1]);
        swapped.swap(position, position - 1);
        let swapped: String = swapped.iter().collect();
        prop_assert_eq!(format.parse(&swapped).unwrap_err().kind(), ErrorKind::Malformed);
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        let format = KeyFormat::default();
        if let Ok(parsed) = format.parse(&input) {
            prop_assert_eq!(parsed.expose_secret(), input.as_str());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..12_000)) {
        let input = String::from_utf8_lossy(&bytes);
        let result = KeyFormat::default().parse(&input);
        prop_assert!(result.is_err());
    }

    #[test]
    fn right_prefix_and_length_with_random_body_is_rejected(body in "[0-9A-Za-z]{49}") {
        // A random body has a 1 in 2^32 chance of a matching checksum.
        let input = format!("pk_live_{body}");
        let result = KeyFormat::default().parse(&input);
        prop_assert!(result.is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn verify_gives_a_typed_error_for_any_input(input in any::<Option<String>>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let keys = ApiKeys::new(MemoryKeyStore::new());
        let result = runtime.block_on(keys.verify(
            input.as_deref(),
            None,
            std::time::SystemTime::UNIX_EPOCH,
        ));
        let kind = result.unwrap_err().kind();
        prop_assert!(matches!(
            kind,
            ErrorKind::Missing | ErrorKind::Malformed | ErrorKind::Unknown
        ));
    }
}
