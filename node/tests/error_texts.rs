//! Library errors say what went wrong, never which `hedgerow` command to run: the CLI
//! (cli/src/hint.rs) adds that, so the library reads the same to any other front end.

use hedgerow_node::home::HomeError;
use hedgerow_node::store::StoreError;
use hedgerow_protocol::encoding::DecodeError;
use std::path::PathBuf;

/// Words that only make sense at the hedgerow command line.
const CLI_WORDS: [&str; 3] = ["`hedgerow ", "--home", "run `"];

fn assert_no_cli_instruction(text: &str) {
    for word in CLI_WORDS {
        assert!(!text.contains(word), "`{word}` in a library error: {text}");
    }
}

#[test]
fn store_and_home_errors_name_the_problem_without_cli_instructions() {
    let path = PathBuf::from("/farm/home/store");
    let errors: Vec<String> = vec![
        StoreError::Locked { path: path.clone() }.to_string(),
        StoreError::Unreadable { path: path.clone() }.to_string(),
        StoreError::Damaged {
            path: path.clone(),
            expected: 9,
            found: 3,
        }
        .to_string(),
        StoreError::Corrupt {
            tree: "changes",
            key: "00ff".into(),
            source: DecodeError::Empty { what: "change" },
        }
        .to_string(),
        StoreError::BadManifest {
            path: path.clone(),
            reason: "not JSON".into(),
        }
        .to_string(),
        HomeError::Missing(path.clone()).to_string(),
        HomeError::NotAHome(path.clone()).to_string(),
        HomeError::NotEmpty(path.clone()).to_string(),
    ];
    for text in &errors {
        assert!(
            text.contains("/farm/home/store") || text.contains("changes"),
            "{text}"
        );
        assert_no_cli_instruction(text);
    }
}
