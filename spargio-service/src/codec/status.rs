//! The status byte that opens every response frame.

use std::fmt;

use crate::error::HandlerError;

/// What a response frame carries: the service's answer ([`Status::Ok`]) or
/// why there is none (every other status, with a UTF-8 message as payload).
///
/// ```
/// use spargio_service::codec::Status;
/// assert_eq!(Status::from_u8(0), Some(Status::Ok));
/// assert_eq!(Status::BadRequest.as_u8(), 5);
/// assert_eq!(Status::from_u8(200), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// 0: the payload is the service's response.
    Ok = 0,
    /// 1: the service returned an error (`poll_ready` or `call`,
    /// [`HandlerError::Service`]), other than a spargio-service `Timeout`
    /// or `LoadShed` layer's (3 and 6).
    ServiceError = 1,
    /// 2: the handler panicked ([`HandlerError::Panicked`]), or the
    /// protocol's [`route_by`](super::LengthDelimited::route_by) function
    /// did on this request.
    Panicked = 2,
    /// 3: the request ran past the server's request timeout
    /// ([`HandlerError::TimedOut`]) or a [`Timeout`](crate::layers::Timeout)
    /// layer's (see [`HandlerError::is_timeout`]).
    TimedOut = 3,
    /// 4: the server is shutting down and cut the request
    /// ([`HandlerError::Cancelled`]), or did not process it at all: it was
    /// pipelined behind the last request the connection answered before
    /// closing. Either way the service's work for it is not done (a cut
    /// one may have begun); an idempotent request can be sent again.
    ShuttingDown = 4,
    /// 5: the request was malformed (its frame was larger than the server
    /// accepts); the server closes the connection after this reply.
    BadRequest = 5,
    /// 6: the service refused the request for load (a
    /// [`LoadShed`](crate::layers::LoadShed) layer's
    /// [`Overloaded`](crate::layers::Overloaded) or tower's own, see
    /// [`HandlerError::is_overloaded`]); the service did no work for it and
    /// it can be sent again later.
    Overloaded = 6,
}

impl Status {
    /// The status's byte on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The status a wire byte stands for; `None` for bytes this version
    /// does not know.
    pub const fn from_u8(byte: u8) -> Option<Status> {
        Some(match byte {
            0 => Status::Ok,
            1 => Status::ServiceError,
            2 => Status::Panicked,
            3 => Status::TimedOut,
            4 => Status::ShuttingDown,
            5 => Status::BadRequest,
            6 => Status::Overloaded,
            _ => return None,
        })
    }

    /// Whether this is [`Status::Ok`].
    pub const fn is_ok(self) -> bool {
        matches!(self, Status::Ok)
    }

    /// A short human-readable name (`"ok"`, `"service error"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::ServiceError => "service error",
            Status::Panicked => "handler panicked",
            Status::TimedOut => "request timed out",
            Status::ShuttingDown => "server shutting down",
            Status::BadRequest => "bad request",
            Status::Overloaded => "service overloaded",
        }
    }
}

impl From<&HandlerError> for Status {
    /// The error status a handler error is reported with.
    fn from(e: &HandlerError) -> Status {
        if e.is_timeout() {
            return Status::TimedOut;
        }
        if e.is_overloaded() {
            return Status::Overloaded;
        }
        match e {
            HandlerError::Service(_) => Status::ServiceError,
            HandlerError::Panicked(_) => Status::Panicked,
            HandlerError::TimedOut => Status::TimedOut,
            HandlerError::Cancelled => Status::ShuttingDown,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.as_u8())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_byte() {
        for byte in 0..=255u8 {
            match Status::from_u8(byte) {
                Some(s) => {
                    assert!(byte <= 6);
                    assert_eq!(s.as_u8(), byte);
                }
                None => assert!(byte > 6),
            }
        }
        assert!(Status::Ok.is_ok());
        assert!(!Status::BadRequest.is_ok());
    }

    #[test]
    fn handler_errors_map_to_their_statuses() {
        let service = HandlerError::Service("boom".into());
        assert_eq!(Status::from(&service), Status::ServiceError);
        assert_eq!(
            Status::from(&HandlerError::Panicked("p".into())),
            Status::Panicked
        );
        assert_eq!(Status::from(&HandlerError::TimedOut), Status::TimedOut);
        assert_eq!(Status::from(&HandlerError::Cancelled), Status::ShuttingDown);
    }

    /// An error that wraps another, as a layer above `LoadShed` or
    /// `Timeout` might.
    #[derive(Debug)]
    struct Wrapped(crate::BoxError);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "wrapped: {}", self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn layer_errors_map_to_load_and_timeout_statuses() {
        use crate::layers::{Elapsed, Overloaded};
        let shed = HandlerError::Service(Overloaded::new().into());
        assert_eq!(Status::from(&shed), Status::Overloaded);
        let late = HandlerError::Service(Elapsed::new().into());
        assert_eq!(Status::from(&late), Status::TimedOut);
        let wrapped = HandlerError::Service(Box::new(Wrapped(Overloaded::new().into())));
        assert_eq!(Status::from(&wrapped), Status::Overloaded);
        let towers = tower::load_shed::error::Overloaded::new();
        let wrapped = HandlerError::Service(Box::new(Wrapped(towers.into())));
        assert_eq!(Status::from(&wrapped), Status::Overloaded);
        let wrapped = HandlerError::Service(Box::new(Wrapped("boom".into())));
        assert_eq!(Status::from(&wrapped), Status::ServiceError);
    }

    #[test]
    fn display_names_the_status_and_its_byte() {
        assert_eq!(Status::BadRequest.to_string(), "bad request (5)");
    }
}
