//! The errors the layers add: [`Elapsed`] and [`Overloaded`].

use std::fmt;

/// The request ran longer than a [`Timeout`](super::Timeout) allowed.
///
/// [`Timeout`](super::Timeout) returns it boxed into a
/// [`BoxError`](crate::BoxError); find it with `downcast_ref`:
///
/// ```
/// use spargio_service::layers::Elapsed;
/// use spargio_service::BoxError;
///
/// let err: BoxError = Elapsed::new().into();
/// assert!(err.downcast_ref::<Elapsed>().is_some());
/// assert_eq!(err.to_string(), "request timed out");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    /// A new `Elapsed` (for tests and for services that time out on their own).
    pub fn new() -> Elapsed {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request timed out")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// The service was not ready, so [`LoadShed`](super::LoadShed) rejected the
/// request instead of waiting.
///
/// [`LoadShed`](super::LoadShed) returns it boxed into a
/// [`BoxError`](crate::BoxError); find it with `downcast_ref`:
///
/// ```
/// use spargio_service::layers::Overloaded;
/// use spargio_service::BoxError;
///
/// let err: BoxError = Overloaded::new().into();
/// assert!(err.is::<Overloaded>());
/// assert_eq!(err.to_string(), "service overloaded");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overloaded(());

impl Overloaded {
    /// A new `Overloaded` (for tests and for services that shed on their own).
    pub fn new() -> Overloaded {
        Overloaded(())
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("service overloaded")
    }
}

impl std::error::Error for Overloaded {}
