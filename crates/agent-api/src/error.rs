//! Why a call between an agent and its controller failed.

/// Any error, as the source of a [`LinkError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Settings the link cannot work with (controller URL, credentials, CA certificates).
    #[error("{0}")]
    Config(String),
    /// The call did not reach the controller, or its answer could not be read.
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: BoxError,
    },
    /// The controller answered with an error status.
    #[error("{what}: {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    /// The controller (in this process) could not do what was asked.
    #[error("{what}: {source}")]
    Controller {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// The host's driver failed.
    #[error("driver: {0}")]
    Driver(#[source] BoxError),
    /// This controller link does not offer the call.
    #[error("{0} is not offered by this controller link")]
    Unsupported(&'static str),
}

impl LinkError {
    pub fn transport(what: impl Into<String>, source: impl Into<BoxError>) -> LinkError {
        LinkError::Transport {
            what: what.into(),
            source: source.into(),
        }
    }

    pub fn controller(what: &'static str, source: impl Into<BoxError>) -> LinkError {
        LinkError::Controller {
            what,
            source: source.into(),
        }
    }
}
