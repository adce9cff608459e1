//! Errors a handler call can end with.

use std::fmt;

/// The error type tower services commonly use (`Box<dyn Error + Send + Sync>`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request did not get a response from the service.
///
/// Protocols turn each case into a reply of their own and keep the
/// connection serving: spargio-http answers 503 for a timeout, a shutdown
/// cut or an overloaded service (see [`is_timeout`](Self::is_timeout) and
/// [`is_overloaded`](Self::is_overloaded)) and 500 for any other failure;
/// the length-delimited codec sends an error frame with the matching
/// [`Status`](crate::codec::Status). A failed `poll_ready` is the exception:
/// the service takes no more requests, so the reply (from spargio-http
/// always a 503) is followed by a close.
#[derive(Debug)]
pub enum HandlerError {
    /// `poll_ready` or the call itself returned an error.
    Service(BoxError),
    /// The handler panicked; the panic stayed inside this request. Carries
    /// the panic message when it was a string.
    Panicked(String),
    /// The request ran longer than the server's request timeout and was
    /// dropped.
    TimedOut,
    /// The server is shutting down and the handler was cut at the deadline.
    Cancelled,
}

impl HandlerError {
    /// Whether the service itself failed (as opposed to a panic, a timeout
    /// or a shutdown).
    pub fn is_service(&self) -> bool {
        matches!(self, HandlerError::Service(_))
    }

    /// Whether the request timed out: the server's request timeout
    /// ([`HandlerError::TimedOut`]) or this crate's
    /// [`Timeout`](crate::layers::Timeout) layer's
    /// [`Elapsed`](crate::layers::Elapsed) (not tower's own: its `timeout`
    /// needs tokio's timer and cannot run here), found anywhere in the
    /// service error's `source()` chain (a layer above may have wrapped it).
    ///
    /// ```
    /// use spargio_service::layers::Elapsed;
    /// use spargio_service::HandlerError;
    ///
    /// assert!(HandlerError::TimedOut.is_timeout());
    /// assert!(HandlerError::Service(Elapsed::new().into()).is_timeout());
    /// assert!(!HandlerError::Service("boom".into()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            HandlerError::TimedOut => true,
            HandlerError::Service(e) => in_chain::<crate::layers::Elapsed>(&**e),
            _ => false,
        }
    }

    /// Whether the service refused the request for load: an `Overloaded`
    /// from this crate's [`LoadShed`](crate::layers::LoadShed) layer or
    /// from tower 0.5's own `load_shed` (it runs on spargio as it is), found
    /// anywhere in the service error's `source()` chain. Protocols answer
    /// it as "try again later" (HTTP 503) rather than as a fault of the
    /// service (500).
    ///
    /// ```
    /// use spargio_service::layers::Overloaded;
    /// use spargio_service::HandlerError;
    ///
    /// assert!(HandlerError::Service(Overloaded::new().into()).is_overloaded());
    /// let tower_own = tower::load_shed::error::Overloaded::new();
    /// assert!(HandlerError::Service(tower_own.into()).is_overloaded());
    /// assert!(!HandlerError::Service("boom".into()).is_overloaded());
    /// ```
    pub fn is_overloaded(&self) -> bool {
        match self {
            HandlerError::Service(e) => {
                in_chain::<crate::layers::Overloaded>(&**e)
                    || in_chain::<tower::load_shed::error::Overloaded>(&**e)
            }
            _ => false,
        }
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> HandlerError {
        let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "handler panicked".to_string()
        };
        HandlerError::Panicked(msg)
    }
}

/// Whether `err` or one of its sources is a `T`.
fn in_chain<T: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<T>() {
            return true;
        }
        // An `io::Error`'s `source()` skips the error it wraps (it gives
        // that error's source): the wrapped one is looked at through
        // `get_ref`, its sources after it.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            next = Some(inner);
            continue;
        }
        next = e.source();
    }
    false
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Service(e) => write!(f, "service error: {e}"),
            HandlerError::Panicked(msg) => write!(f, "handler panicked: {msg}"),
            HandlerError::TimedOut => f.write_str("request timed out"),
            HandlerError::Cancelled => f.write_str("request cancelled by server shutdown"),
        }
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandlerError::Service(e) => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HandlerError;
    use crate::layers::{Elapsed, Overloaded};

    /// A service whose error type is `io::Error` wraps the layers' errors
    /// in it (`Elapsed` converts into one). `io::Error::source` skips
    /// what it wraps, so a walk by `source()` alone never saw them.
    #[test]
    fn a_timeout_or_overload_inside_an_io_error_is_recognised() {
        let timed_out: std::io::Error = Elapsed::new().into();
        assert!(HandlerError::Service(Box::new(timed_out)).is_timeout());
        let shed = std::io::Error::other(Overloaded::new());
        let nested = std::io::Error::other(shed);
        assert!(HandlerError::Service(Box::new(nested)).is_overloaded());
        let plain = std::io::Error::other("boom");
        assert!(!HandlerError::Service(Box::new(plain)).is_timeout());
    }
}
