//! The primary side: connect to perspectives over QUIC (mutual TLS), fan a validation out, verify
//! every signed result and echoed field, and apply the BR 3.2.2.9 quorum rule per target.

mod error;
mod failover;
pub mod verify;

pub use error::ClientError;
use error::classify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quinn::crypto::rustls::QuicClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use crate::close_code;
use crate::frame::{self, FrameError};
use crate::perspective::{PerspectiveId, Rir};
use crate::quorum::{self, QuorumPolicy, RemoteOutcome, RemoteState, Verdict};
use crate::request::{ALPN, PROTOCOL_VERSION, Request, Target};
use crate::result::{NodeMessage, Outcome, ResultPayload};
use crate::signing::VerifyingKey;

pub use verify::verify_result;

/// How long to wait for a QUIC handshake by default: a healthy perspective answers in one RTT.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default tolerated clock difference between primary and node when checking result times.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// One perspective the primary uses, with the key its results must verify under.
#[derive(Debug, Clone)]
pub struct NodeEndpoint {
    /// Expected perspective id (echoed in every result).
    pub perspective_id: PerspectiveId,
    /// Expected RIR of the perspective.
    pub rir: Rir,
    /// QUIC address.
    pub address: SocketAddr,
    /// Name in the node's server certificate.
    pub server_name: String,
    /// The node's published result-signing key.
    pub verifying_key: VerifyingKey,
}

/// The primary's TLS material and limits.
#[derive(Debug)]
pub struct ClientOptions {
    /// CA certificates that node server certificates chain to.
    pub server_roots: Vec<CertificateDer<'static>>,
    /// Client certificate chain and key; `None` connects without one (nodes refuse that; tests use it).
    pub identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Handshake timeout.
    pub connect_timeout: Duration,
    /// Cap on one result frame.
    pub max_result_bytes: usize,
    /// Tolerated clock skew for result time windows.
    pub clock_skew: Duration,
    /// The tenant this primary is at nodes that serve several CAs: every result must name it
    /// (see [`verify::check_tenant`]). `None`: results are not checked for a tenant.
    pub tenant: Option<String>,
}

impl ClientOptions {
    /// Options with default limits.
    pub fn new(
        server_roots: Vec<CertificateDer<'static>>,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Self {
        Self {
            server_roots,
            identity,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_result_bytes: frame::DEFAULT_MAX_RESULT_BYTES,
            clock_skew: DEFAULT_CLOCK_SKEW,
            tenant: None,
        }
    }
}

/// A verified result with the perspective it came from.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// Index of the node in the primary's list.
    pub node_index: usize,
    /// The verified payload.
    pub payload: ResultPayload,
}

/// The outcome of one validation across every perspective.
#[derive(Debug)]
pub struct Validation {
    /// The request that was sent.
    pub request: Request,
    /// One verdict per target, in request order.
    pub targets: Vec<TargetVerdict>,
}

impl Validation {
    /// True when every target's verdict permits issuance.
    pub fn permits_issuance(&self) -> bool {
        self.targets
            .iter()
            .all(|target| target.verdict.permits_issuance())
    }
}

/// The verdict for one target and what each perspective said.
#[derive(Debug)]
pub struct TargetVerdict {
    /// The target.
    pub target: Target,
    /// The quorum verdict over the non-shadow perspectives.
    pub verdict: Verdict,
    /// Each perspective's answer, in node order.
    pub reports: Vec<PerspectiveReport>,
}

/// What one perspective said about one target.
#[derive(Debug)]
pub struct PerspectiveReport {
    /// The perspective.
    pub perspective_id: PerspectiveId,
    /// Its verified result, if one arrived before the decision.
    pub result: Option<ResultPayload>,
    /// Why there is no usable result, if the node failed.
    pub error: Option<String>,
}

/// When [`Primary`] stops collecting answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collect {
    /// As soon as every target's verdict is final.
    UntilDecided,
    /// When every node has answered or the timeout passed.
    Everything,
}

/// A connected primary. Cheap to clone; connections are kept and reused per node.
#[derive(Clone)]
pub struct Primary {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: quinn::Endpoint,
    nodes: Vec<NodeLink>,
    options: ClientOptions,
    /// Node indexes per perspective id, in order of first appearance: several nodes may serve
    /// one perspective (load is spread over them, a failed one is failed over).
    groups: Vec<Vec<usize>>,
    /// Round-robin position for spreading requests over a perspective's nodes.
    rotor: std::sync::atomic::AtomicUsize,
    /// Origin of the nodes' `down_until_ms`.
    epoch: std::time::Instant,
}

struct NodeLink {
    endpoint: NodeEndpoint,
    connection: Mutex<Option<quinn::Connection>>,
    /// Milliseconds after `Inner::epoch` until which the node is skipped after a failure.
    down_until_ms: std::sync::atomic::AtomicU64,
}

impl Primary {
    /// Builds the QUIC client for these perspectives. Nothing connects until first use.
    pub fn new(nodes: Vec<NodeEndpoint>, options: ClientOptions) -> Result<Self, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for root in &options.server_roots {
            roots.add(root.clone())?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots);
        let mut tls = match &options.identity {
            Some((chain, key)) => builder.with_client_auth_cert(chain.clone(), key.clone_key())?,
            None => builder.with_no_client_auth(),
        };
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = QuicClientConfig::try_from(tls)
            .map_err(|e| ClientError::Tls(rustls::Error::General(e.to_string())))?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(quic));
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_secs(10)));
        client_config.transport_config(Arc::new(transport));

        let any_v6 = nodes.iter().any(|node| node.address.is_ipv6());
        let bind: SocketAddr = if any_v6 {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoint = quinn::Endpoint::client(bind).map_err(ClientError::Endpoint)?;
        endpoint.set_default_client_config(client_config);
        let groups = failover::groups(&nodes);
        let nodes = nodes
            .into_iter()
            .map(|endpoint| NodeLink {
                endpoint,
                connection: Mutex::new(None),
                down_until_ms: std::sync::atomic::AtomicU64::new(0),
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                nodes,
                options,
                groups,
                rotor: std::sync::atomic::AtomicUsize::new(0),
                epoch: std::time::Instant::now(),
            }),
        })
    }

    /// The configured perspectives.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeEndpoint> {
        self.inner.nodes.iter().map(|link| &link.endpoint)
    }

    /// Builds a request with a fresh random request id and nonce.
    pub fn new_request(
        &self,
        targets: Vec<Target>,
        timeout: Duration,
    ) -> Result<Request, ClientError> {
        let rng = ring::rand::SystemRandom::new();
        let id: [u8; 16] = ring::rand::generate(&rng)
            .map_err(|_| ClientError::Random)?
            .expose();
        let nonce: [u8; 32] = ring::rand::generate(&rng)
            .map_err(|_| ClientError::Random)?
            .expose();
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Ok(Request {
            version: PROTOCOL_VERSION,
            request_id: hex::encode(id),
            nonce: nonce.to_vec(),
            deadline_unix_ms: unix_ms()?.saturating_add(timeout_ms),
            targets,
        })
    }

    /// Sends `request` to one node and returns every verified result, in arrival order.
    pub async fn query(
        &self,
        node_index: usize,
        request: &Request,
    ) -> Result<Vec<ResultPayload>, ClientError> {
        let (sender, mut receiver) = mpsc::channel(request.targets.len().max(1));
        let query = self.stream_results(node_index, request, sender);
        let collect = async {
            let mut results = Vec::new();
            while let Some(result) = receiver.recv().await {
                results.push(result);
            }
            results
        };
        let (outcome, results) = tokio::join!(query, collect);
        outcome?;
        Ok(results)
    }

    /// Fans a validation out to every node and applies the quorum rule per target, deciding
    /// early when every target's verdict is final. Nodes that fail count as non-corroborating.
    pub async fn validate(
        &self,
        targets: Vec<Target>,
        timeout: Duration,
        policy: QuorumPolicy,
    ) -> Result<Validation, ClientError> {
        self.run_validation(targets, timeout, policy, Collect::UntilDecided)
            .await
    }

    /// Like [`Primary::validate`], but waits for every perspective's answer (or the timeout)
    /// before deciding, so every result can be logged (BR 5.4.1 2.7) even when the verdict was
    /// settled earlier.
    pub async fn validate_all(
        &self,
        targets: Vec<Target>,
        timeout: Duration,
        policy: QuorumPolicy,
    ) -> Result<Validation, ClientError> {
        self.run_validation(targets, timeout, policy, Collect::Everything)
            .await
    }

    async fn run_validation(
        &self,
        targets: Vec<Target>,
        timeout: Duration,
        policy: QuorumPolicy,
        collect: Collect,
    ) -> Result<Validation, ClientError> {
        let request = Arc::new(self.new_request(targets, timeout)?);
        // One answer per perspective: a perspective served by several nodes is asked through
        // one of them, failing over to the next within the deadline.
        let node_count = self.inner.groups.len();
        let target_count = request.targets.len();
        let (sender, mut receiver) =
            mpsc::channel::<(usize, Result<ResultPayload, ClientError>)>(64);
        let mut tasks = JoinSet::new();
        for index in 0..node_count {
            let primary = self.clone();
            let request = Arc::clone(&request);
            let sender = sender.clone();
            tasks.spawn(async move {
                let (results_tx, mut results_rx) = mpsc::channel(request.targets.len().max(1));
                let forward = async {
                    while let Some(payload) = results_rx.recv().await {
                        if sender.send((index, Ok(payload))).await.is_err() {
                            break;
                        }
                    }
                };
                let (outcome, ()) =
                    tokio::join!(primary.stream_group(index, &request, results_tx), forward);
                if let Err(error) = outcome {
                    let _ = sender.send((index, Err(error))).await;
                }
            });
        }
        drop(sender);

        // results[target][node]
        let mut results: Vec<Vec<Option<ResultPayload>>> =
            vec![vec![None; node_count]; target_count];
        let mut errors: HashMap<usize, String> = HashMap::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut verdicts = self.verdicts(&policy, &results, &errors)?;
        while collect == Collect::Everything
            || verdicts
                .iter()
                .any(|verdict| verdict.decision == quorum::Decision::Undecided)
        {
            let next = tokio::time::timeout_at(deadline, receiver.recv()).await;
            match next {
                Ok(Some((node, Ok(payload)))) => {
                    let index = payload.target_index as usize;
                    if let Some(slot) = results.get_mut(index).and_then(|row| row.get_mut(node)) {
                        *slot = Some(payload);
                    }
                }
                Ok(Some((node, Err(error)))) => {
                    errors.insert(node, error.to_string());
                }
                // Every node finished, or time is up: whatever is still pending has failed.
                Ok(None) | Err(_) => {
                    for node in 0..node_count {
                        errors
                            .entry(node)
                            .or_insert_with(|| "no answer before the deadline".into());
                    }
                    verdicts = self.verdicts(&policy, &results, &errors)?;
                    break;
                }
            }
            verdicts = self.verdicts(&policy, &results, &errors)?;
        }
        tasks.abort_all();

        let mut targets = Vec::with_capacity(target_count);
        for ((target, verdict), row) in request.targets.iter().zip(verdicts).zip(results) {
            let reports = row
                .into_iter()
                .enumerate()
                .map(|(node, result)| PerspectiveReport {
                    perspective_id: self.group_endpoint(node).perspective_id.clone(),
                    error: if result.is_none() {
                        errors.get(&node).cloned()
                    } else {
                        None
                    },
                    result,
                })
                .collect();
            targets.push(TargetVerdict {
                target: target.clone(),
                verdict,
                reports,
            });
        }
        let request = Arc::try_unwrap(request).unwrap_or_else(|shared| (*shared).clone());
        Ok(Validation { request, targets })
    }

    fn verdicts(
        &self,
        policy: &QuorumPolicy,
        results: &[Vec<Option<ResultPayload>>],
        errors: &HashMap<usize, String>,
    ) -> Result<Vec<Verdict>, ClientError> {
        results
            .iter()
            .map(|row| {
                let remotes: Vec<RemoteOutcome> = row
                    .iter()
                    .enumerate()
                    // A shadow perspective is logged but never counted (standards digest §1).
                    .filter(|(_, result)| !result.as_ref().is_some_and(|r| r.perspective.shadow))
                    .map(|(node, result)| {
                        let endpoint = self.group_endpoint(node);
                        let state = match result {
                            Some(payload) if payload.outcome == Outcome::Pass => {
                                RemoteState::Corroborated
                            }
                            Some(_) => RemoteState::NotCorroborated,
                            None if errors.contains_key(&node) => RemoteState::NotCorroborated,
                            None => RemoteState::Pending,
                        };
                        RemoteOutcome {
                            perspective_id: endpoint.perspective_id.clone(),
                            rir: endpoint.rir,
                            state,
                        }
                    })
                    .collect();
                Ok(quorum::evaluate(policy, &remotes)?)
            })
            .collect()
    }

    /// The QUIC connection to node `node_index`, opened on first use and reused after. For tools
    /// and conformance tests that write frames themselves.
    pub async fn connect(&self, node_index: usize) -> Result<quinn::Connection, ClientError> {
        let link = self
            .inner
            .nodes
            .get(node_index)
            .ok_or(ClientError::NoSuchNode(node_index))?;
        self.connection(link).await
    }

    async fn connection(&self, link: &NodeLink) -> Result<quinn::Connection, ClientError> {
        let mut slot = link.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            if connection.close_reason().is_none() {
                return Ok(connection.clone());
            }
        }
        let node = &link.endpoint;
        let connecting = self
            .inner
            .endpoint
            .connect(node.address, &node.server_name)
            .map_err(|e| ClientError::Connection {
                node: node.perspective_id.clone(),
                address: node.address,
                detail: e.to_string(),
            })?;
        let timeout = self.inner.options.connect_timeout;
        let connection = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(classify(node, error)),
            Err(_) => {
                return Err(ClientError::Timeout {
                    node: node.perspective_id.clone(),
                    elapsed: timeout,
                });
            }
        };
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Sends the request on a new stream of `node_index`'s connection and forwards each verified
    /// result as it arrives.
    async fn stream_results(
        &self,
        node_index: usize,
        request: &Request,
        sink: mpsc::Sender<ResultPayload>,
    ) -> Result<(), ClientError> {
        self.stream_results_within(node_index, request, sink, None)
            .await
    }

    /// [`Primary::stream_results`], giving up after `cap` when one is given (a node of a
    /// perspective served by several gets part of the time, the rest is for failing over).
    async fn stream_results_within(
        &self,
        node_index: usize,
        request: &Request,
        sink: mpsc::Sender<ResultPayload>,
        cap: Option<Duration>,
    ) -> Result<(), ClientError> {
        let link = self
            .inner
            .nodes
            .get(node_index)
            .ok_or(ClientError::NoSuchNode(node_index))?;
        let node = &link.endpoint;
        let started = tokio::time::Instant::now();
        let full = Duration::from_millis(request.deadline_unix_ms.saturating_sub(unix_ms()?))
            + self.inner.options.clock_skew;
        let budget = cap.map_or(full, |cap| cap.min(full));
        let work = async {
            let connection = self.connection(link).await?;
            let lost = |connection: &quinn::Connection, fallback: String| match connection
                .close_reason()
            {
                Some(reason) => classify(node, reason),
                None => ClientError::Connection {
                    node: node.perspective_id.clone(),
                    address: node.address,
                    detail: fallback,
                },
            };
            let (mut send, mut recv) = connection.open_bi().await.map_err(|e| classify(node, e))?;
            let encoded =
                frame::encode(request, usize::MAX).map_err(|source| ClientError::Frame {
                    node: node.perspective_id.clone(),
                    source,
                })?;
            match send.write_all(&encoded).await {
                Ok(()) => {
                    let _ = send.finish();
                }
                // The node stopped reading the request: it answered before reading it all (a
                // refusal at admission comes first, then STOP_SENDING). Read that answer; a
                // stream with no answer on it ends as `Incomplete` below.
                Err(quinn::WriteError::Stopped(_)) => {}
                Err(error) => return Err(lost(&connection, error.to_string())),
            }
            let sent_ms = unix_ms()?;
            let mut seen = vec![false; request.targets.len()];
            let mut count = 0;
            loop {
                let body =
                    match frame::io::read_frame(&mut recv, self.inner.options.max_result_bytes)
                        .await
                    {
                        Ok(Some(body)) => body,
                        Ok(None) => break,
                        Err(FrameError::Io(error)) => {
                            return Err(lost(&connection, error.to_string()));
                        }
                        Err(source) => {
                            return Err(ClientError::Frame {
                                node: node.perspective_id.clone(),
                                source,
                            });
                        }
                    };
                let message: NodeMessage =
                    frame::decode_body(&body).map_err(|source| ClientError::Frame {
                        node: node.perspective_id.clone(),
                        source,
                    })?;
                match message {
                    NodeMessage::Error(error) => {
                        return Err(ClientError::Refused {
                            node: node.perspective_id.clone(),
                            error,
                        });
                    }
                    NodeMessage::Result(signed) => {
                        let window = verify::Window {
                            sent_unix_ms: sent_ms,
                            now_unix_ms: unix_ms()?,
                            skew: self.inner.options.clock_skew,
                        };
                        let payload = verify_result(node, request, &signed, window, &mut seen)?;
                        verify::check_tenant(node, self.inner.options.tenant.as_deref(), &payload)?;
                        count += 1;
                        if sink.send(payload).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            if count < request.targets.len() {
                return Err(ClientError::Incomplete {
                    node: node.perspective_id.clone(),
                    got: count,
                    expected: request.targets.len(),
                });
            }
            Ok(())
        };
        match tokio::time::timeout(budget, work).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                node: node.perspective_id.clone(),
                elapsed: started.elapsed(),
            }),
        }
    }

    /// Closes every connection and waits briefly for the closes to be sent.
    pub async fn close(&self) {
        self.inner.endpoint.close(close_code::DONE.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }
}

/// Current time in UNIX milliseconds.
pub fn unix_ms() -> Result<u64, ClientError> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ClientError::Clock)?;
    Ok(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
