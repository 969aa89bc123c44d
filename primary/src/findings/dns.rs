//! DNS disagreement: the same question answered with different RRsets (split-horizon,
//! geo-DNS) or answered for some perspectives and empty for others (propagation).

use std::collections::{BTreeMap, BTreeSet};

use mpic_protocol::ResultPayload;

use super::{Cause, Finding, Observation, Side};

/// What one perspective got for one DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DnsAnswer {
    /// A non-empty RRset: normalized records (TTL dropped, owner lowercased), and as quoted.
    Records(BTreeSet<String>, Vec<String>),
    /// NXDOMAIN or NOERROR without records.
    Absent(String),
}

/// A record in presentation format without its TTL (caches count it down) and with the owner
/// lowercased, so the same RRset compares equal from every perspective.
pub(super) fn normalize(record: &str) -> String {
    let mut tokens: Vec<String> = record.split_whitespace().map(str::to_owned).collect();
    if tokens.len() > 2 && tokens[1].parse::<u32>().is_ok() {
        tokens.remove(1);
    }
    if let Some(owner) = tokens.first_mut() {
        *owner = owner.to_ascii_lowercase();
    }
    tokens.join(" ")
}

/// The serial of the first SOA record in the result's DNS evidence, if any.
fn soa_serial(result: &ResultPayload) -> Option<u32> {
    result
        .evidence
        .dns
        .iter()
        .flat_map(|d| &d.records)
        .find_map(|record| {
            let tokens: Vec<&str> = record.split_whitespace().collect();
            let at = tokens.iter().position(|t| t.eq_ignore_ascii_case("SOA"))?;
            tokens.get(at + 3)?.parse().ok()
        })
}

type Question = (String, String);

fn dns_answers(
    answered: &[(&Observation, &ResultPayload)],
) -> Vec<(Question, Vec<(usize, DnsAnswer)>)> {
    let mut order: Vec<Question> = Vec::new();
    let mut by_question: BTreeMap<Question, BTreeMap<usize, DnsAnswer>> = BTreeMap::new();
    for (index, (_, result)) in answered.iter().enumerate() {
        for lookup in &result.evidence.dns {
            let question = (
                lookup.name.trim_end_matches('.').to_ascii_lowercase(),
                lookup.record_type.to_ascii_uppercase(),
            );
            let answer = match lookup.rcode.as_str() {
                "NOERROR" if !lookup.records.is_empty() => DnsAnswer::Records(
                    lookup.records.iter().map(|r| normalize(r)).collect(),
                    lookup.records.clone(),
                ),
                "NOERROR" => DnsAnswer::Absent("NOERROR, no records".into()),
                "NXDOMAIN" => DnsAnswer::Absent("NXDOMAIN".into()),
                _ => continue,
            };
            if !by_question.contains_key(&question) {
                order.push(question.clone());
            }
            by_question
                .entry(question)
                .or_default()
                .insert(index, answer);
        }
    }
    order
        .into_iter()
        .filter_map(|q| {
            let answers = by_question.remove(&q)?;
            Some((q, answers.into_iter().collect()))
        })
        .collect()
}

pub(super) fn differences(answered: &[(&Observation, &ResultPayload)]) -> Vec<Finding> {
    let mut found = Vec::new();
    for ((name, record_type), answers) in dns_answers(answered) {
        // Distinct non-empty RRsets, in first-seen order, with who saw each.
        let mut rrsets: Vec<(&BTreeSet<String>, &Vec<String>, Vec<usize>)> = Vec::new();
        let mut absent: Vec<(usize, &str)> = Vec::new();
        for (index, answer) in &answers {
            match answer {
                DnsAnswer::Records(set, quoted) => {
                    match rrsets.iter_mut().find(|(known, _, _)| *known == set) {
                        Some((_, _, members)) => members.push(*index),
                        None => rrsets.push((set, quoted, vec![*index])),
                    }
                }
                DnsAnswer::Absent(how) => absent.push((*index, how)),
            }
        }
        let server = |index: usize| {
            let (_, result) = answered[index];
            result
                .evidence
                .dns
                .iter()
                .rev()
                .find(|d| d.name.trim_end_matches('.').eq_ignore_ascii_case(&name))
                .and_then(|d| d.server.clone())
                .map(|s| format!(" (answered by {s})"))
                .unwrap_or_default()
        };
        let serial = |index: usize| {
            soa_serial(answered[index].1)
                .map(|s| format!(", SOA serial {s}"))
                .unwrap_or_default()
        };
        let who = |index: usize| &answered[index].0.perspective_id;
        if rrsets.len() >= 2 {
            let sides = rrsets
                .iter()
                .enumerate()
                .map(|(n, (_, quoted, members))| Side {
                    label: format!("answer {}", n + 1),
                    perspectives: members.iter().map(|&i| who(i).clone()).collect(),
                    evidence: quoted
                        .iter()
                        .cloned()
                        .chain(members.iter().map(|&i| format!("{}{}", who(i), server(i))))
                        .collect(),
                })
                .collect();
            found.push(Finding {
                cause: Cause::SplitHorizon,
                title: format!(
                    "{name} {record_type}: {} different answers to the same question \
                     (split-horizon or geo-DNS)",
                    rrsets.len()
                ),
                sides,
                advice: format!(
                    "serve the same {record_type} RRset for {name} to every network (every view \
                     of a split-horizon setup, every region of a geo-DNS service)"
                ),
            });
        }
        if !rrsets.is_empty() && !absent.is_empty() {
            found.push(propagation(
                (&name, &record_type),
                &rrsets,
                &absent,
                answered,
                (&server, &serial),
            ));
        }
    }
    found
}

type Describe<'a> = (&'a dyn Fn(usize) -> String, &'a dyn Fn(usize) -> String);

fn propagation(
    (name, record_type): (&str, &str),
    rrsets: &[(&BTreeSet<String>, &Vec<String>, Vec<usize>)],
    absent: &[(usize, &str)],
    answered: &[(&Observation, &ResultPayload)],
    (server, serial): Describe<'_>,
) -> Finding {
    let present: Vec<usize> = rrsets.iter().flat_map(|(_, _, m)| m.clone()).collect();
    let who = |index: usize| answered[index].0.perspective_id.clone();
    let any_serial = present
        .iter()
        .chain(absent.iter().map(|(i, _)| i))
        .any(|&i| soa_serial(answered[i].1).is_some());
    let mut present_evidence: Vec<String> = rrsets
        .iter()
        .flat_map(|(_, quoted, _)| quoted.iter().cloned())
        .collect();
    present_evidence.extend(
        present
            .iter()
            .map(|&i| format!("{}{}{}", who(i), server(i), serial(i))),
    );
    Finding {
        cause: Cause::Propagation,
        title: format!(
            "{name} {record_type}: present for {} perspective(s), absent for {} (not yet on every \
             authoritative server?)",
            present.len(),
            absent.len()
        ),
        sides: vec![
            Side {
                label: "record present".into(),
                perspectives: present.iter().map(|&i| who(i)).collect(),
                evidence: present_evidence,
            },
            Side {
                label: "record absent".into(),
                perspectives: absent.iter().map(|(i, _)| who(*i)).collect(),
                evidence: absent
                    .iter()
                    .map(|(i, how)| format!("{}: {how}{}{}", who(*i), server(*i), serial(*i)))
                    .collect(),
            },
        ],
        advice: if any_serial {
            "the SOA serials differ: wait for every authoritative server to load the new zone \
             (check zone transfers / NOTIFY), then retry"
                .into()
        } else {
            format!(
                "the signed evidence carries no SOA serial: ask each authoritative server \
                 directly (`dig +norec SOA {name} @server`) and make sure every one serves the \
                 new record (zone transfers / NOTIFY), then retry"
            )
        },
    }
}
