//! Errors a handler call can end with.

use std::fmt;

/// The error type tower services commonly use (`Box<dyn Error + Send + Sync>`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request did not get a response from the service.
///
/// Protocols turn each case into a reply of their own (HTTP: 500, 503 or
/// 504; the length-delimited codec: an error frame) and keep the
/// connection serving.
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
