//! Misuse of `#[cached]` fails to compile, with a message that points at
//! the attribute's argument at fault (tests/ui/*.rs and their .stderr).

#[test]
fn misuse_fails_to_compile_with_a_clear_message() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
