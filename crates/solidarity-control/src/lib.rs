//! The control API shared by the daemon and the CLI.
//!
//! - Transport: a Unix socket `control.sock` in the node's data dir (dir 0700, socket
//!   0600); one request per connection.
//! - Framing: the client writes one JSON [`Request`] and a newline; the daemon answers one
//!   JSON line and closes.
//! - Types: every command is one type in [`request`] whose [`ControlRequest::Response`]
//!   names its answer, so [`Client::call`] returns that type and the daemon can answer
//!   nothing else; there is no response enum to unpack.
//!
//! The JSON shape (stable; fields may be added, none renamed):
//!
//! ```text
//! request:  {"op":"alert_show","alert":"<64 hex>"}            one of `Request`'s ops
//! answer:   {"result":"alert_detail", ...fields of AlertDetail} result = ControlResponse::RESULT
//! refusal:  {"result":"error","code":"no_such_alert","message":"no alert with id …"}
//! ```
//!
//! A refusal's `code` is a [`RefusalCode`] (see [`refusal`] for the promise it keeps); a
//! reader that does not know it, or a daemon from before codes that sends none, still has
//! the `message`.
//!
//! Architecture invariant: this crate holds types and a blocking client only; the server
//! side lives in the node. It depends on `solidarity-proto` for the message types, nothing else.

#![warn(missing_docs)]

pub mod backup;
mod notify_views;
pub mod refusal;
pub mod request;
mod views;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use solidarity_proto::state::{AlertView, OfferView};
use solidarity_proto::{AuthorKey, MessageId};

pub use backup::{EnvelopeBytes, ExportedExtras, ExportedPage, ImportOutcome, Imported};
pub use notify_views::{
    ChannelStatus, ChannelTest, NoticeLine, NoticeList, NotifyStatusView, NotifyTested,
};
pub use refusal::{Refusal, RefusalCode};
pub use views::{
    AlertDetail, Alerts, CanaryState, CanaryView, CardLine, Distrust, Done, IdMatches, MemberView,
    Members, MetricsText, Offers, OverBudget, Raised, RevocationSigner, StanceView, StatusView,
    TorView, TrustBasis,
};

/// File name of the socket inside the data dir.
pub const SOCKET_FILE: &str = "control.sock";
/// Largest request line the daemon reads; larger ones are refused unread.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Largest response the client reads (a listing of every alert fits many times over).
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;
/// How long the client waits for the daemon.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The `result` of a refusal line.
const REFUSED: &str = "error";

/// A command to the daemon, with the type of its answer.
pub trait ControlRequest: Clone + Into<Request> {
    /// What the daemon answers when it carries the request out.
    type Response: ControlResponse;
}

/// An answer to one kind of request.
pub trait ControlResponse: Serialize + DeserializeOwned {
    /// Its `result` tag on the wire.
    const RESULT: &'static str;
}

/// The daemon's answer to a request of type `R`: carried out, or refused.
pub type Answer<R> = Result<<R as ControlRequest>::Response, Refusal>;

macro_rules! requests {
    ($($name:ident => $response:ident,)*) => {
        /// Any request, as it goes on the wire: `{"op":"<the type's name in snake_case>",
        /// ...its fields}`. The daemon parses this and answers each variant with the
        /// response its type names.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub enum Request {
            $(
                #[doc = concat!("[`request::", stringify!($name), "`] → [`", stringify!($response), "`].")]
                $name(request::$name),
            )*
        }

        $(
            impl ControlRequest for request::$name {
                type Response = $response;
            }

            impl From<request::$name> for Request {
                fn from(request: request::$name) -> Self {
                    Self::$name(request)
                }
            }
        )*
    };
}

requests! {
    Status => StatusView,
    Peers => Members,
    Metrics => MetricsText,
    Card => CardLine,
    ReloadMembers => Done,
    MemberRetrust => Done,
    AlertRaise => Raised,
    AlertUpdate => Raised,
    AlertList => Alerts,
    AlertShow => AlertDetail,
    AlertIds => IdMatches,
    AlertEndorse => Raised,
    MemberVouch => Raised,
    MirrorOffer => Raised,
    MirrorWithdraw => Raised,
    MirrorList => Offers,
    CanaryPublish => Raised,
    PublishStatement => Raised,
    CanaryDuress => Raised,
    NotifyTest => NotifyTested,
    NotifyStatus => NotifyStatusView,
    NotifyList => NoticeList,
    ExportPage => ExportedPage,
    ExportExtras => ExportedExtras,
    Import => Imported,
}

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nobody listens on the socket (the CLI adds how to start the daemon).
    #[error("the solidarity daemon is not running for data dir {}", data_dir.display())]
    DaemonNotRunning {
        /// The data dir.
        data_dir: PathBuf,
    },
    /// The socket exists but may not be opened.
    #[error(
        "no permission to use the control socket {socket}: run as the daemon's user or root \
         (a system node's socket also serves the members of its group: \
         `adduser YOU solidarity`, then log in again)"
    )]
    PermissionDenied {
        /// The socket path.
        socket: PathBuf,
    },
    /// Talking to the daemon failed midway.
    #[error("control connection failed: {source}")]
    Io {
        /// Why.
        #[from]
        source: std::io::Error,
    },
    /// The daemon closed the connection without answering.
    #[error(
        "the daemon closed the connection without answering (is it stopping?); the request may or may not have been carried out"
    )]
    NoAnswer,
    /// The daemon's answer does not parse.
    #[error("the daemon sent an answer this CLI cannot read (version mismatch?): {source}")]
    BadResponse {
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon refused the request; nothing changed.
    #[error("{0}")]
    Refused(Refusal),
    /// The daemon answered with a response of the wrong type.
    #[error("the daemon answered {got} to a request that expects {expected}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What came.
        got: String,
    },
}

/// Why a request line was refused by the daemon.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Over [`MAX_REQUEST_BYTES`].
    #[error("request larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// Not a request.
    #[error("malformed request: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl From<RequestError> for Refusal {
    fn from(error: RequestError) -> Self {
        let code = match error {
            RequestError::TooLarge => RefusalCode::RequestTooLarge,
            RequestError::Malformed(_) => RefusalCode::MalformedRequest,
        };
        Refusal::new(code, error.to_string())
    }
}

/// Parses one request line.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    Ok(serde_json::from_slice(line)?)
}

/// Encodes the answer to a request of type `R` as its line (with the newline).
pub fn encode_answer<R: ControlRequest>(answer: &Answer<R>) -> Vec<u8> {
    let encoded = match answer {
        Ok(response) => tagged(response, <R::Response as ControlResponse>::RESULT),
        Err(refusal) => tagged(refusal, REFUSED),
    };
    let mut line = encoded.unwrap_or_else(|error| {
        // The response types hold only strings, integers and ids: this cannot fail.
        format!(
            "{{\"result\":\"error\",\"code\":\"unknown\",\"message\":\"cannot encode the answer: {error}\"}}"
        )
        .into_bytes()
    });
    line.push(b'\n');
    line
}

/// Encodes a refusal line (with its newline), for a request whose type is not known (it
/// did not parse, or never came).
pub fn encode_refusal(refusal: &Refusal) -> Vec<u8> {
    encode_answer::<request::Status>(&Err(refusal.clone()))
}

/// `value`'s JSON object with `"result": result` added.
fn tagged(value: &impl Serialize, result: &str) -> Result<Vec<u8>, serde_json::Error> {
    let mut object = match serde_json::to_value(value)? {
        serde_json::Value::Object(object) => object,
        _ => return Err(serde::ser::Error::custom("an answer is a JSON object")),
    };
    object.insert("result".to_owned(), result.into());
    serde_json::to_vec(&object)
}

/// Reads the answer to a request of type `R` from its line.
pub fn decode_answer<R: ControlRequest>(line: &[u8]) -> Result<R::Response, ControlError> {
    let bad = |source| ControlError::BadResponse { source };
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).map_err(bad)?;
    let result = match object.remove("result") {
        Some(serde_json::Value::String(result)) => result,
        other => {
            return Err(ControlError::Unexpected {
                expected: <R::Response as ControlResponse>::RESULT,
                got: format!("{other:?}").chars().take(80).collect(),
            });
        }
    };
    let object = serde_json::Value::Object(object);
    if result == REFUSED {
        let refusal = serde_json::from_value(object).map_err(bad)?;
        return Err(ControlError::Refused(refusal));
    }
    if result != <R::Response as ControlResponse>::RESULT {
        return Err(ControlError::Unexpected {
            expected: <R::Response as ControlResponse>::RESULT,
            got: result.chars().take(80).collect(),
        });
    }
    serde_json::from_value(object).map_err(bad)
}

/// The socket path inside a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Blocking client of one node's control socket.
#[derive(Debug, Clone)]
pub struct Client {
    data_dir: PathBuf,
    socket: PathBuf,
}

impl Client {
    /// A client of the node whose data dir is `data_dir`, on the socket inside it.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            socket: socket_path(&data_dir),
            data_dir,
        }
    }

    /// A client of the node whose data dir is `data_dir`, on a socket elsewhere (a system
    /// node's is in its runtime directory).
    pub fn at_socket(data_dir: impl Into<PathBuf>, socket: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            socket: socket.into(),
        }
    }

    /// Sends one request and returns the daemon's typed answer; a refusal becomes
    /// [`ControlError::Refused`].
    pub fn call<R: ControlRequest>(&self, request: &R) -> Result<R::Response, ControlError> {
        let socket = &self.socket;
        let mut stream = UnixStream::connect(socket).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ControlError::DaemonNotRunning {
                    data_dir: self.data_dir.clone(),
                }
            }
            std::io::ErrorKind::PermissionDenied => ControlError::PermissionDenied {
                socket: socket.clone(),
            },
            _ => ControlError::Io { source: error },
        })?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let wire: Request = request.clone().into();
        let mut line = serde_json::to_vec(&wire).map_err(|source| ControlError::Io {
            source: std::io::Error::other(source),
        })?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut answer = Vec::new();
        BufReader::new(stream.take(MAX_RESPONSE_BYTES)).read_until(b'\n', &mut answer)?;
        if answer.is_empty() {
            return Err(ControlError::NoAnswer);
        }
        decode_answer::<R>(&answer)
    }

    /// Sends a request that signs a message; returns its id once durably stored.
    pub fn sign<R: ControlRequest<Response = Raised>>(
        &self,
        request: &R,
    ) -> Result<MessageId, ControlError> {
        Ok(self.call(request)?.id)
    }

    /// `solidarity status`.
    pub fn status(&self) -> Result<StatusView, ControlError> {
        self.call(&request::Status {})
    }

    /// `solidarity metrics`.
    pub fn metrics(&self) -> Result<String, ControlError> {
        Ok(self.call(&request::Metrics {})?.text)
    }

    /// `solidarity peers`, by name then key.
    pub fn peers(&self) -> Result<Vec<MemberView>, ControlError> {
        let mut members = self.call(&request::Peers {})?.members;
        members.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.cmp(&b.key)));
        Ok(members)
    }

    /// `solidarity id` while the daemon runs.
    pub fn card(&self) -> Result<String, ControlError> {
        Ok(self.call(&request::Card {})?.card)
    }

    /// Lifts the compromise mark of a key.
    pub fn retrust(&self, key: AuthorKey) -> Result<(), ControlError> {
        self.call(&request::MemberRetrust { key }).map(|Done {}| ())
    }

    /// Tells the daemon the members file changed.
    pub fn reload_members(&self) -> Result<(), ControlError> {
        self.call(&request::ReloadMembers {}).map(|Done {}| ())
    }

    /// `solidarity alert list`.
    pub fn alerts(&self) -> Result<Vec<AlertView>, ControlError> {
        Ok(self.call(&request::AlertList { all: false })?.alerts)
    }

    /// `solidarity alert list --all`: every stored alert.
    pub fn all_alerts(&self) -> Result<Vec<AlertView>, ControlError> {
        Ok(self.call(&request::AlertList { all: true })?.alerts)
    }

    /// `solidarity alert show`.
    pub fn alert_show(&self, alert: MessageId) -> Result<AlertDetail, ControlError> {
        self.call(&request::AlertShow { alert })
    }

    /// The stored alerts whose id starts with `prefix`.
    pub fn alert_ids(&self, prefix: &str) -> Result<IdMatches, ControlError> {
        self.call(&request::AlertIds {
            prefix: prefix.to_owned(),
        })
    }

    /// `solidarity mirror list`.
    pub fn offers(&self) -> Result<Vec<OfferView>, ControlError> {
        Ok(self.call(&request::MirrorList {})?.offers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_proto::payload::AlertStatus;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let request = Request::from(request::AlertUpdate {
            alert: MessageId([1; 32]),
            status: AlertStatus::Confirmed,
            note: Some("seen".into()),
        });
        let line = serde_json::to_vec(&request).expect("encode");
        assert_eq!(parse_request(&line).expect("parse"), request);
        let extra = format!(
            r#"{{"op":"mirror_withdraw","offer":"{}","extra":1}}"#,
            "00".repeat(32)
        );
        assert!(parse_request(extra.as_bytes()).is_err());
        assert!(parse_request(br#"{"op":"status","extra":1}"#).is_err());
        assert!(parse_request(b"not json").is_err());
        assert!(matches!(
            parse_request(&vec![b' '; MAX_REQUEST_BYTES + 1]),
            Err(RequestError::TooLarge)
        ));
    }

    #[test]
    fn request_lines_keep_their_wire_shape() {
        let line = |request: Request| serde_json::to_string(&request).expect("encode");
        assert_eq!(line(request::Status {}.into()), r#"{"op":"status"}"#);
        assert_eq!(
            line(request::AlertList { all: true }.into()),
            r#"{"op":"alert_list","all":true}"#
        );
        assert_eq!(
            line(
                request::PublishStatement {
                    envelope: vec![0xab, 0x01]
                }
                .into()
            ),
            r#"{"op":"publish_statement","envelope":"ab01"}"#
        );
        assert_eq!(
            parse_request(br#"{"op":"reload_members"}"#).expect("parse"),
            Request::ReloadMembers(request::ReloadMembers {})
        );
        assert_eq!(
            parse_request(br#"{"op":"alert_list"}"#).expect("parse"),
            Request::AlertList(request::AlertList { all: false })
        );
    }

    #[test]
    fn each_request_reads_back_only_its_own_answer() {
        let id = MessageId([7; 32]);
        let line = encode_answer::<request::AlertRaise>(&Ok(Raised { id }));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&line).expect("json"),
            serde_json::json!({ "result": "raised", "id": id })
        );
        assert_eq!(
            decode_answer::<request::CanaryPublish>(&line).expect("raised"),
            Raised { id }
        );
        let error = decode_answer::<request::MirrorList>(&line).expect_err("not offers");
        assert!(
            matches!(
                error,
                ControlError::Unexpected {
                    expected: "offers",
                    ..
                }
            ),
            "{error}"
        );
        let done = encode_answer::<request::ReloadMembers>(&Ok(Done {}));
        assert_eq!(done, b"{\"result\":\"done\"}\n");
        assert_eq!(
            decode_answer::<request::MemberRetrust>(&done).expect("done"),
            Done {}
        );
    }

    #[test]
    fn a_refusal_travels_with_its_code_and_reads_as_its_message() {
        let refusal = Refusal::new(
            RefusalCode::AlertRetracted,
            "alert 0707 is already retracted",
        );
        let line = encode_answer::<request::AlertUpdate>(&Err(refusal.clone()));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&line).expect("json"),
            serde_json::json!({
                "result": "error",
                "code": "alert_retracted",
                "message": "alert 0707 is already retracted",
            })
        );
        match decode_answer::<request::AlertUpdate>(&line) {
            Err(ControlError::Refused(read)) => {
                assert_eq!(read, refusal);
                assert_eq!(
                    ControlError::Refused(read).to_string(),
                    "alert 0707 is already retracted"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A daemon from before codes.
        let older = br#"{"result":"error","message":"refused: duplicate"}"#;
        assert!(matches!(
            decode_answer::<request::AlertRaise>(older),
            Err(ControlError::Refused(Refusal {
                code: RefusalCode::Unknown,
                ..
            }))
        ));
        assert_eq!(
            encode_refusal(&Refusal::from(RequestError::TooLarge)),
            encode_answer::<request::Peers>(&Err(Refusal::new(
                RefusalCode::RequestTooLarge,
                format!("request larger than {MAX_REQUEST_BYTES} bytes")
            )))
        );
    }

    #[test]
    fn a_missing_daemon_is_named_as_such() {
        let dir = std::env::temp_dir().join("solidarity-no-daemon-here");
        let error = Client::new(&dir).status().expect_err("no daemon");
        assert!(
            matches!(error, ControlError::DaemonNotRunning { .. }),
            "{error}"
        );
    }
}
