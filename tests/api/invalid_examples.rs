use crate::support::{TestNamespace, repo_path};

/// One file of examples/invalid/: its documents and the text the refusal must contain.
struct InvalidCase {
    file: String,
    expect: String,
    documents: Vec<String>,
}

fn cases() -> Vec<InvalidCase> {
    let mut files: Vec<_> = std::fs::read_dir(repo_path("examples/invalid"))
        .expect("read examples/invalid/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read invalid example");
            let file = path.file_name().expect("name").to_string_lossy().into_owned();
            let expect = text
                .lines()
                .find_map(|l| l.strip_prefix("# expect-error:"))
                .unwrap_or_else(|| panic!("{file} has no `# expect-error:` line"))
                .trim()
                .to_string();
            let documents = text.split("\n---\n").map(str::to_string).collect();
            InvalidCase {
                file,
                expect,
                documents,
            }
        })
        .collect()
}

#[tokio::test]
async fn every_invalid_example_is_refused_naming_the_field() {
    let cases = cases();
    assert!(cases.len() >= 12, "one invalid example per validation rule");
    let ns = TestNamespace::create("invalid");
    let mut failures = Vec::new();
    for case in &cases {
        let (last, setup) = case.documents.split_last().expect("at least one document");
        for doc in setup {
            let out = ns
                .kubectl(&["apply", "--server-side", "-f", "-"])
                .output_with_stdin(doc);
            assert!(
                out.success,
                "{}: the setup document must apply: {}",
                case.file, out.stderr
            );
        }
        let out = ns
            .kubectl(&["apply", "--server-side", "-f", "-"])
            .output_with_stdin(last);
        if out.success {
            failures.push(format!("{}: accepted, must be refused", case.file));
        } else if !out.stderr.contains(&case.expect) {
            failures.push(format!(
                "{}: refusal does not mention {:?}:\n{}",
                case.file, case.expect, out.stderr
            ));
        } else if !out.stderr.contains("is invalid") {
            failures.push(format!(
                "{}: refused for another reason than validation:\n{}",
                case.file, out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
