//! One perspective, several nodes: the primary groups its nodes by perspective id, spreads
//! requests over a perspective's nodes round-robin, and when a node fails (connection lost,
//! no answer in its share of the time, `overloaded`, `shutting_down`) sends the same request —
//! same request id and nonce — to the next node of the perspective within the request's
//! deadline. The answer then carries that node's own signature, verified under its own key.
//! A failed node is skipped for [`DOWN_FOR`] so the load does not keep finding it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{ClientError, NodeEndpoint, Primary, unix_ms};
use crate::request::Request;
use crate::result::{ProtocolErrorKind, ResultPayload};

/// How long a node that failed is skipped (unless every node of its perspective is down).
pub(super) const DOWN_FOR: Duration = Duration::from_secs(5);

/// Node indexes per perspective id, in order of first appearance.
pub(super) fn groups(nodes: &[NodeEndpoint]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|group| nodes[group[0]].perspective_id == node.perspective_id)
        {
            Some(group) => group.push(index),
            None => groups.push(vec![index]),
        }
    }
    groups
}

/// Whether another node of the same perspective may answer where this one did not.
fn worth_failing_over(error: &ClientError) -> bool {
    match error {
        ClientError::Connection { .. }
        | ClientError::Timeout { .. }
        | ClientError::Incomplete { .. }
        | ClientError::Frame { .. } => true,
        ClientError::Refused { error, .. } => matches!(
            error.kind,
            ProtocolErrorKind::Overloaded
                | ProtocolErrorKind::ShuttingDown
                | ProtocolErrorKind::Internal
        ),
        _ => false,
    }
}

impl NodeEndpoint {
    /// The node a verified manifest describes, reached at `address` (TLS name `server_name`):
    /// the manifest must verify under `key` (the key the CA has for this node), and its
    /// perspective id and RIR become the endpoint's. Nodes of one perspective give one
    /// endpoint each, all with the same perspective id.
    pub fn from_manifest(
        manifest: &crate::manifest::SignedManifest,
        key: &crate::signing::VerifyingKey,
        address: std::net::SocketAddr,
        server_name: &str,
    ) -> Result<Self, crate::manifest::ManifestError> {
        let manifest = manifest.verify(key)?;
        Ok(Self {
            perspective_id: manifest.perspective_id,
            rir: manifest.rir,
            address,
            server_name: server_name.to_owned(),
            verifying_key: key.clone(),
        })
    }
}

impl Primary {
    /// How many perspectives the primary has (nodes with one perspective id count once).
    pub fn perspective_count(&self) -> usize {
        self.inner.groups.len()
    }

    /// The endpoint describing perspective `group` (its first node).
    pub(super) fn group_endpoint(&self, group: usize) -> &NodeEndpoint {
        &self.inner.nodes[self.inner.groups[group][0]].endpoint
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Perspective `group`'s nodes in the order to try: round-robin from a rotating start,
    /// nodes marked down last.
    fn order(&self, group: usize) -> Vec<usize> {
        let members = &self.inner.groups[group];
        let start = self.inner.rotor.fetch_add(1, Ordering::Relaxed) % members.len();
        let now = self.now_ms();
        let mut order: Vec<usize> = (0..members.len())
            .map(|offset| members[(start + offset) % members.len()])
            .collect();
        order.sort_by_key(|&node| {
            self.inner.nodes[node].down_until_ms.load(Ordering::Relaxed) > now
        });
        order
    }

    async fn mark_down(&self, node: usize) {
        let link = &self.inner.nodes[node];
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(DOWN_FOR.as_millis()).unwrap_or(u64::MAX));
        link.down_until_ms.store(until, Ordering::Relaxed);
        // A dead peer's connection is not reused: the next attempt dials afresh.
        *link.connection.lock().await = None;
    }

    /// Sends `request` to perspective `group` (see [`Primary::perspective_count`]) through one
    /// of its nodes, failing over to the others within the deadline; forwards each verified
    /// result (a target may arrive twice when a node failed after answering part of it).
    pub(super) async fn stream_group(
        &self,
        group: usize,
        request: &Request,
        sink: mpsc::Sender<ResultPayload>,
    ) -> Result<(), ClientError> {
        let order = self.order(group);
        let mut last = None;
        for (attempt, &node) in order.iter().enumerate() {
            let left = order.len() - attempt;
            let remaining =
                Duration::from_millis(request.deadline_unix_ms.saturating_sub(unix_ms()?));
            if attempt > 0 && remaining.is_zero() {
                break;
            }
            // With nodes left to try, this one gets its share of the time.
            let cap = (left > 1).then(|| remaining / u32::try_from(left).unwrap_or(u32::MAX));
            match self
                .stream_results_within(node, request, sink.clone(), cap)
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if worth_failing_over(&error) => {
                    self.mark_down(node).await;
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(ClientError::NoSuchNode(group)))
    }

    /// Sends `request` to perspective `group` (failing over between its nodes) and returns the
    /// verified results of the node that answered, one per target.
    pub async fn query_perspective(
        &self,
        group: usize,
        request: &Request,
    ) -> Result<Vec<ResultPayload>, ClientError> {
        if group >= self.inner.groups.len() {
            return Err(ClientError::NoSuchNode(group));
        }
        let (sender, mut receiver) = mpsc::channel(request.targets.len().max(1));
        let query = self.stream_group(group, request, sender);
        let collect = async {
            let mut results: Vec<Option<ResultPayload>> = vec![None; request.targets.len()];
            while let Some(result) = receiver.recv().await {
                let index = result.target_index as usize;
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
            results
        };
        let (outcome, results) = tokio::join!(query, collect);
        outcome?;
        Ok(results.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PerspectiveId, Rir, SigningKey};

    fn endpoint(id: &str, port: u16) -> NodeEndpoint {
        let (key, _) = SigningKey::generate().unwrap();
        NodeEndpoint {
            perspective_id: PerspectiveId::new(id).unwrap(),
            rir: Rir::Arin,
            address: ([127, 0, 0, 1], port).into(),
            server_name: "localhost".into(),
            verifying_key: key.verifying_key().clone(),
        }
    }

    #[test]
    fn nodes_are_grouped_by_perspective_in_first_seen_order() {
        let nodes = [
            endpoint("a", 1),
            endpoint("b", 2),
            endpoint("a", 3),
            endpoint("c", 4),
        ];
        assert_eq!(groups(&nodes), [vec![0, 2], vec![1], vec![3]]);
    }

    #[test]
    fn an_endpoint_comes_from_a_manifest_that_verifies() {
        use crate::manifest::{Egress, KeyStatus, MANIFEST_VERSION, Manifest, ManifestKey};
        let (key, _) = SigningKey::generate().unwrap();
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            perspective_id: PerspectiveId::new("fra-1").unwrap(),
            rir: Rir::RipeNcc,
            location: "Frankfurt".into(),
            egress: Egress::default(),
            http_user_agent: "ua".into(),
            dns_source_addresses: vec![],
            keys: vec![ManifestKey {
                key_id: key.key_id().to_string(),
                public_key: key.verifying_key().to_base64(),
                status: KeyStatus::Current,
                retired_unix_ms: None,
                valid_until_unix_ms: None,
            }],
            software_version: "0".into(),
            issued_unix_ms: 0,
        };
        let signed = manifest.sign(&key).unwrap();
        let address = ([192, 0, 2, 1], 4433).into();
        let node =
            NodeEndpoint::from_manifest(&signed, key.verifying_key(), address, "fra-1.example")
                .unwrap();
        assert_eq!(node.perspective_id.as_str(), "fra-1");
        assert_eq!(node.rir, Rir::RipeNcc);
        assert_eq!(node.address, address);
        let (other, _) = SigningKey::generate().unwrap();
        assert!(NodeEndpoint::from_manifest(&signed, other.verifying_key(), address, "x").is_err());
    }

    #[test]
    fn only_failures_another_node_may_not_repeat_are_failed_over() {
        let node = PerspectiveId::new("a").unwrap();
        let refused = |kind| ClientError::Refused {
            node: node.clone(),
            error: crate::ProtocolError {
                kind,
                detail: String::new(),
                retry_after_ms: None,
            },
        };
        assert!(worth_failing_over(&refused(ProtocolErrorKind::Overloaded)));
        assert!(worth_failing_over(&refused(
            ProtocolErrorKind::ShuttingDown
        )));
        assert!(!worth_failing_over(&refused(ProtocolErrorKind::BadRequest)));
        assert!(worth_failing_over(&ClientError::Timeout {
            node,
            elapsed: Duration::from_secs(1),
        }));
    }
}
