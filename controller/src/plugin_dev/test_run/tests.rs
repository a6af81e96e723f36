use super::*;

const EXAMPLE: &str = include_str!("../../../../plugins/examples/add-header/plugin-test.yaml");

#[test]
fn the_example_test_file_reads_with_defaults() {
    let tests: TestFile = serde_norway::from_str(EXAMPLE).unwrap();
    assert_eq!(tests.cases.len(), 5);
    assert_eq!(
        tests.limits().memory_limit_bytes,
        weft_plugins::DEFAULT_MEMORY_LIMIT_BYTES
    );
    let first = &tests.cases[0];
    assert_eq!(
        first.response.status, 200,
        "upstream answers 200 unless told"
    );
    assert_eq!(
        first.expect.backend,
        Some(None),
        "`backend: null` is an expectation"
    );
    assert_eq!(
        tests.cases[1].expect.backend, None,
        "a missing backend is not"
    );
}

#[test]
fn a_misspelt_field_is_refused_by_name() {
    let err =
        serde_norway::from_str::<TestFile>("cases: [{name: a, expect: {requestHeader: {x: y}}}]")
            .unwrap_err();
    assert!(err.to_string().contains("requestHeader"), "{err}");
}

#[test]
fn compare_names_each_difference_and_nothing_else() {
    let expect: Expect = serde_norway::from_str(
        "{status: 403, requestHeaders: {x-a: b, x-gone: null}, retry: false, \
          metrics: ['hits_total 1']}",
    )
    .unwrap();
    let mut outcome = Outcome {
        status: 403,
        metrics: "# TYPE hits counter\nhits_total 1\n".into(),
        ..Outcome::default()
    };
    outcome.request_headers.insert("x-a", "b".parse().unwrap());
    assert_eq!(compare(&expect, &outcome), Vec::<String>::new());

    outcome.status = 200;
    outcome
        .request_headers
        .insert("x-gone", "here".parse().unwrap());
    outcome.failure = Some("plugin `p` failed: trapped".into());
    let diffs = compare(&expect, &outcome);
    assert_eq!(diffs.len(), 3, "{diffs:#?}");
    assert!(diffs[0].contains("- expected 403") && diffs[0].contains("+ got      200"));
    assert!(diffs[1].contains("`x-gone`") && diffs[1].contains("\"here\""));
    assert!(diffs[2].contains("trapped"));
}
