//! Integration tests for the `#[spargio_rt::main]` and `#[spargio_rt::test]`
//! attribute macros (crate `spargio-rt-macros`, re-exported behind the
//! default `macros` feature).
#![cfg(feature = "macros")]

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spargio_rt::{RuntimeHandle, ShardId};

/// Unwraps a join result without requiring `JoinError: Debug`.
fn joined<T, E>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(_) => panic!("task failed"),
    }
}

// ---------------------------------------------------------------------------
// #[spargio_rt::test]
// ---------------------------------------------------------------------------

#[spargio_rt::test]
async fn test_defaults_to_two_shards(handle: RuntimeHandle) {
    assert_eq!(handle.shard_count(), 2);
}

#[spargio_rt::test(shards = 4)]
async fn test_shards_option_is_honored(handle: RuntimeHandle) {
    assert_eq!(handle.shard_count(), 4);
}

#[spargio_rt::test(shards = 1)]
async fn test_single_shard(handle: RuntimeHandle) {
    assert_eq!(handle.shard_count(), 1);
}

#[spargio_rt::test(shards = 3, ring_entries = 64)]
async fn test_ring_entries_option_is_accepted(h: RuntimeHandle) {
    assert_eq!(h.shard_count(), 3);
}

#[spargio_rt::test]
async fn test_without_handle_argument() {
    let handle = RuntimeHandle::current();
    assert_eq!(handle.shard_count(), 2);
}

#[spargio_rt::test]
async fn test_body_with_an_inner_attribute(handle: RuntimeHandle) {
    // An inner attribute is the body's first line (syn hands it over with
    // the function's own attributes); it must stay inside the function.
    #![allow(unused_variables)]
    let unused = handle.shard_count();
}

#[spargio_rt::test]
async fn test_underscore_handle_argument(_h: RuntimeHandle) {
    assert!(RuntimeHandle::try_current().is_some());
}

#[spargio_rt::test]
async fn test_mut_handle_argument(mut handle: RuntimeHandle) {
    handle = handle.clone();
    assert_eq!(handle.shard_count(), 2);
}

#[spargio_rt::test]
async fn test_body_runs_on_shard_zero(handle: RuntimeHandle) {
    assert_eq!(handle.current_shard(), Some(ShardId(0)));
}

#[spargio_rt::test]
async fn test_free_spawn_inside() {
    let task = spargio_rt::spawn(async { 6 * 7 });
    assert_eq!(joined(task.await), 42);
}

#[spargio_rt::test(shards = 4)]
async fn test_handle_spawn_many(handle: RuntimeHandle) {
    let tasks: Vec<_> = (0..64u64)
        .map(|i| handle.spawn(async move { i * 2 }))
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += joined(task.await);
    }
    assert_eq!(sum, (0..64u64).map(|i| i * 2).sum::<u64>());
}

#[spargio_rt::test]
async fn test_body_need_not_be_send(handle: RuntimeHandle) {
    let counter = Rc::new(Cell::new(0));
    let inner = Rc::clone(&counter);
    let task = handle.spawn_local(async move { inner.set(inner.get() + 5) });
    joined(task.await);
    // `counter` (an `Rc`) is held across the await above.
    assert_eq!(counter.get(), 5);
}

#[spargio_rt::test]
async fn test_sleep_inside() {
    let start = Instant::now();
    spargio_rt::time::sleep(Duration::from_millis(10)).await;
    assert!(start.elapsed() >= Duration::from_millis(10));
}

#[spargio_rt::test]
async fn test_returns_ok_result() -> Result<(), String> {
    let n: u32 = "7".parse().map_err(|e| format!("{e}"))?;
    if n != 7 {
        return Err(format!("parsed {n}"));
    }
    Ok(())
}

#[spargio_rt::test]
async fn test_returns_io_result(handle: RuntimeHandle) -> std::io::Result<()> {
    let task = handle.spawn(async { Ok::<_, std::io::Error>(1) });
    let one = joined(task.await)?;
    assert_eq!(one, 1);
    Ok(())
}

#[spargio_rt::test]
async fn test_returns_a_non_send_boxed_error(
    handle: RuntimeHandle,
) -> Result<(), Box<dyn std::error::Error>> {
    // `Box<dyn Error>` is not `Send`: the test's result is reported on
    // shard 0 and only its exit code comes back.
    let state = std::rc::Rc::new(handle.current_shard());
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    assert_eq!(*state, Some(ShardId(0)));
    Ok(())
}

/// Set by [`a_test_returning_err_fails`] in the environment of the child
/// it runs: [`test_returning_err_when_asked`] returns it as its error.
const FAILURE_ASKED_FOR: &str = "SPARGIO_MACROS_TEST_FAILURE";

#[spargio_rt::test]
async fn test_returning_err_when_asked() -> Result<(), String> {
    match std::env::var(FAILURE_ASKED_FOR) {
        Ok(reason) => Err(reason),
        Err(_) => Ok(()),
    }
}

#[test]
fn a_test_returning_err_fails() {
    // The test's result goes through the macro's exit code: an `Err` must
    // come out as a failed test that shows the error.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "test_returning_err_when_asked",
            "--test-threads=1",
        ])
        .env(FAILURE_ASKED_FOR, "the failure this test asked for")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child passed: {stdout}");
    assert!(
        stdout.contains("test test_returning_err_when_asked ... FAILED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the failure this test asked for"),
        "the error is not shown: {stdout}"
    );
}

#[spargio_rt::test]
#[should_panic(expected = "boom from the test body")]
async fn test_panic_in_body_fails_the_test() {
    panic!("boom from the test body");
}

#[spargio_rt::test]
#[should_panic(expected = "boom with an explicit unit return")]
#[allow(clippy::unused_unit)]
async fn test_should_panic_with_an_explicit_unit_return() -> () {
    panic!("boom with an explicit unit return");
}

#[spargio_rt::test]
#[deny(unused_variables)]
async fn test_attributes_on_the_handle_argument_are_kept(
    #[allow(unused_variables)] handle: RuntimeHandle,
) {
}

#[spargio_rt::test]
#[deny(unused_variables)]
async fn test_attributes_on_the_handle_argument_are_kept_with_a_return_type(
    #[allow(unused_variables)] handle: RuntimeHandle,
) -> Result<(), std::io::Error> {
    Ok(())
}

#[spargio_rt::test]
#[ignore = "checks that #[ignore] is kept on the generated test"]
async fn test_ignore_attribute_is_kept() {
    panic!("an ignored test must not run");
}

// ---------------------------------------------------------------------------
// #[spargio_rt::main] on functions with other names, called from #[test]s
// ---------------------------------------------------------------------------

/// Doc comments and visibility are kept.
#[spargio_rt::main(shards = 3)]
pub(crate) async fn entry_three_shards(h: RuntimeHandle) -> usize {
    h.shard_count()
}

#[spargio_rt::main(shards = 1)]
async fn entry_one_shard(h: RuntimeHandle) -> usize {
    h.shard_count()
}

#[spargio_rt::main]
async fn entry_default_builder(h: RuntimeHandle) -> usize {
    h.shard_count()
}

#[spargio_rt::main(shards = 2)]
async fn entry_without_handle() -> usize {
    RuntimeHandle::current().shard_count()
}

#[spargio_rt::main(shards = 2)]
async fn entry_unit(_handle: RuntimeHandle) {}

#[spargio_rt::main(shards = 2)]
async fn entry_spawns() -> u64 {
    let tasks: Vec<_> = (1..=10u64)
        .map(|i| spargio_rt::spawn(async move { i }))
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += joined(task.await);
    }
    sum
}

#[spargio_rt::main(shards = 2)]
async fn entry_early_return(_h: RuntimeHandle) -> &'static str {
    for i in 0..10 {
        if i == 3 {
            return "early";
        }
    }
    "late"
}

#[spargio_rt::main(shards = 2)]
async fn entry_parse_ok() -> Result<u64, std::num::ParseIntError> {
    let v: u64 = "42".parse()?;
    Ok(v)
}

#[spargio_rt::main(shards = 2)]
async fn entry_parse_err() -> Result<u64, std::num::ParseIntError> {
    let v: u64 = "forty-two".parse()?;
    Ok(v)
}

#[spargio_rt::main(shards = 2)]
async fn entry_boxed_error() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _: i32 = "nope".parse()?;
    Ok(())
}

/// An error type of our own, for a boxed error that must coerce.
#[derive(Debug)]
struct OwnError;

impl std::fmt::Display for OwnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("own error")
    }
}

impl std::error::Error for OwnError {}

/// `return Err(Box::new(..))` coerces to the declared `Box<dyn Error>`
/// (the body is checked against the return type, not inferred alone).
#[spargio_rt::main(shards = 2)]
async fn entry_returns_a_boxed_error_of_its_own(
) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    if std::hint::black_box(true) {
        return Err(Box::new(OwnError));
    }
    Ok(7)
}

#[spargio_rt::main(shards = 2)]
async fn entry_panics() {
    panic!("boom from main body");
}

mod renamed {
    pub use spargio_rt::*;
}

#[spargio_rt::main(crate = "crate::renamed", shards = 2)]
async fn entry_renamed_crate(h: renamed::RuntimeHandle) -> usize {
    h.shard_count()
}

#[spargio_rt::main(crate = "spargio_rt", shards = 1, ring_entries = 32)]
async fn entry_explicit_crate_and_ring(h: RuntimeHandle) -> Option<ShardId> {
    h.current_shard()
}

#[test]
fn main_honors_shard_count() {
    assert_eq!(entry_three_shards(), 3);
    assert_eq!(entry_one_shard(), 1);
}

#[test]
fn main_default_builder_has_shards() {
    assert!(entry_default_builder() >= 1);
}

#[test]
fn main_without_handle_argument() {
    assert_eq!(entry_without_handle(), 2);
}

#[test]
fn main_unit_return() {
    entry_unit();
}

#[test]
fn main_spawn_inside() {
    assert_eq!(entry_spawns(), 55);
}

#[test]
fn main_boxed_error_of_its_own_coerces() {
    let err = entry_returns_a_boxed_error_of_its_own().unwrap_err();
    assert_eq!(err.to_string(), "own error");
}

#[test]
fn main_return_statement() {
    assert_eq!(entry_early_return(), "early");
}

#[test]
fn main_result_return_types() {
    assert_eq!(entry_parse_ok(), Ok(42));
    assert!(entry_parse_err().is_err());
    assert!(entry_boxed_error().is_err());
}

#[test]
#[should_panic(expected = "boom from main body")]
fn main_panic_reaches_caller() {
    entry_panics();
}

#[test]
fn main_crate_option() {
    assert_eq!(entry_renamed_crate(), 2);
    assert_eq!(entry_explicit_crate_and_ring(), Some(ShardId(0)));
}

#[test]
fn main_can_run_repeatedly() {
    for _ in 0..3 {
        assert_eq!(entry_three_shards(), 3);
    }
}

/// A type whose associated functions run on a runtime of their own.
struct Server {
    port: u16,
}

impl Server {
    fn default_port() -> u16 {
        8080
    }

    /// The body names `Self`, and the return type is `Self`.
    #[spargio_rt::main(shards = 2)]
    async fn start(h: RuntimeHandle) -> Self {
        let port = h.spawn(async { Self::default_port() }).await.unwrap();
        Self { port }
    }

    /// A value other than `Self`, from a body that names `Self`.
    #[spargio_rt::main(shards = 1)]
    async fn port_on_a_runtime() -> u16 {
        Self::default_port() + 1
    }
}

/// A generic type whose associated function uses the impl's parameter.
struct Maker<T>(std::marker::PhantomData<T>);

impl<T: Default + Send + 'static> Maker<T> {
    fn fresh() -> T {
        T::default()
    }

    /// Returns the impl's parameter, through a body that names `Self`.
    #[spargio_rt::main(shards = 1)]
    async fn make() -> T {
        Self::fresh()
    }
}

#[test]
fn main_on_associated_functions_sees_self_and_the_impls_generics() {
    assert_eq!(Server::start().port, 8080);
    assert_eq!(Server::port_on_a_runtime(), 8081);
    assert_eq!(Maker::<u32>::make(), 0);
    assert_eq!(Maker::<String>::make(), "");
}
