//! Our pulls: starting, resuming, holding back and ending them, and following each
//! response of the sync protocol.

use super::*;
use std::collections::BTreeMap;

impl<L: LocalState> Service<L> {
    /// Starts pulling `commons` from `peer`, unless a pull is already running; an
    /// interrupted pull resumes from where it stopped.
    pub(super) fn start_pull(&mut self, peer: PeerId, commons: CommonsId) {
        let key = (peer, commons);
        match self.pulls.get(&key) {
            Some(Pull::Running(_)) => return,
            // Held for the sync window; the window's opening resumes it.
            Some(Pull::Deferred(_)) if !self.window_open() => return,
            // Starts when identify says the peer's version, or at its deadline.
            Some(Pull::AwaitingVersion(_)) => return,
            _ => {}
        }
        let budget = self.peer.entry(peer).or_default().link.budget();
        let v2 = self.peer.get(&peer).is_some_and(|p| p.sync_v2);
        let v4 = self.peer.get(&peer).is_some_and(|p| p.sync_v4);
        let version_known = self.peer.get(&peer).is_some_and(|p| p.identified);
        // A resumed pull needs the clocks of the documents still queued; a new one needs none.
        let resumed = match self.pulls.remove(&key) {
            Some(Pull::Interrupted { session, since, .. })
            | Some(Pull::Postponed(Some((session, since)))) => Some((session, since)),
            Some(Pull::Deferred(session)) => Some((session, self.now)),
            _ => None,
        };
        let queued: HashSet<IdPrefix> = resumed
            .as_ref()
            .map(|(session, _)| session.queued_prefixes().into_iter().collect())
            .unwrap_or_default();
        let local = match self.local.local_docs(&commons, &|p, _| queued.contains(p)) {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!("cannot read local state of {commons}: {e}");
                if let Some((session, since)) = resumed {
                    self.pulls.insert(
                        key,
                        Pull::Interrupted {
                            session,
                            since,
                            retry: None,
                        },
                    );
                }
                return;
            }
        };
        self.report(peer);
        let step = match resumed {
            Some((mut session, _)) => {
                session.set_budget(budget);
                session.set_v2_peer(v2);
                session.set_v4_peer(v4);
                tracing::debug!(
                    "resuming pull of {commons} from {peer}: {} documents to ask for",
                    queued.len()
                );
                let step = session.resume(&local);
                self.pulls.insert(key, Pull::Running(session));
                step
            }
            None if !version_known && local.len() > SKETCH_THRESHOLD => {
                // A large commons' opening request depends on the peer's version (a sketch
                // or a summary answers it), and identify arrives about a round trip after
                // the connection.
                self.pulls
                    .insert(key, Pull::AwaitingVersion(self.now + VERSION_WAIT));
                return;
            }
            None => {
                let mut session = PullSession::new(commons, budget);
                session.set_v2_peer(v2);
                session.set_v4_peer(v4);
                if let Ok(Some(genesis)) = self.local.commons_genesis(&commons) {
                    // The commons' charter first: the rest is admitted under it.
                    let charter =
                        hedgerow_protocol::DocGenesis::charter(commons, genesis.body.creator);
                    session = session.with_first(&charter.id());
                }
                let hello = session.hello(&local);
                self.pulls.insert(key, Pull::Running(session));
                PullStep::Send(hello)
            }
        };
        self.follow(peer, commons, step);
    }

    /// Starts the pulls from `peer` that waited for identify to say its sync version.
    pub(super) fn start_pulls_awaiting_version(&mut self, peer: PeerId) {
        let waiting: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::AwaitingVersion(_)))
            .map(|((_, c), _)| *c)
            .collect();
        for commons in waiting {
            self.pulls.remove(&(peer, commons));
            self.start_pull(peer, commons);
        }
    }

    /// Starts a pull, or holds it back while the peer is busy fetching from us.
    pub(super) fn pull_unless_catching_up(&mut self, peer: PeerId, commons: CommonsId) {
        let now = self.now;
        let catching_up = self
            .peer
            .get(&peer)
            .and_then(|p| p.fetched_at)
            .is_some_and(|at| now.saturating_duration_since(at) < CATCHING_UP);
        let key = (peer, commons);
        let held = matches!(
            self.pulls.get(&key),
            Some(Pull::Running(_) | Pull::Deferred(_))
        );
        if catching_up && !held {
            let resume = match self.pulls.remove(&key) {
                Some(Pull::Interrupted { session, since, .. })
                | Some(Pull::Postponed(Some((session, since)))) => Some((session, since)),
                _ => None,
            };
            self.pulls.insert(key, Pull::Postponed(resume));
        } else {
            self.start_pull(peer, commons);
        }
    }

    /// Pulls every held and wanted commons from `peer`.
    ///
    /// A private commons is pulled only from peers that joined its hashed topic (asking any
    /// other peer would tell it the commons id and this device's key).
    pub(super) fn pull_everything(&mut self, peer: PeerId) {
        let mut all: Vec<CommonsId> = self.local.commons().into_iter().map(|(id, _)| id).collect();
        all.extend(self.wanted.iter().copied());
        all.sort();
        all.dedup();
        for commons in all {
            let on_topic = self
                .private_peers
                .get(&peer)
                .is_some_and(|c| c.contains(&commons));
            if self.local.privacy(&commons) == crate::private::Privacy::Private && !on_topic {
                continue;
            }
            self.pull_unless_catching_up(peer, commons);
        }
    }

    pub(super) fn send(&mut self, peer: PeerId, commons: CommonsId, request: SyncRequest) {
        if self.must_prove(peer, commons) {
            // A private commons is asked for only after our proof on this connection.
            self.prove_then(peer, commons, request);
            return;
        }
        let (budget, asked) = match &request {
            SyncRequest::Fetch { budget, wants, .. } => {
                (Some(*budget), wants.iter().map(|w| w.prefix).collect())
            }
            SyncRequest::FetchV3 { budget, wants, .. } => {
                (Some(*budget), wants.iter().map(|w| w.prefix).collect())
            }
            SyncRequest::Hello { .. }
            | SyncRequest::HelloV4 { .. }
            | SyncRequest::Entries { .. }
            | SyncRequest::Prove(_) => (None, HashSet::new()),
        };
        // A peer that speaks `/hedgerow/sync/3` gets its compact forms; any other the first's.
        let request = if self.peer.get(&peer).is_some_and(|p| p.sync_v3) {
            request.into_v3()
        } else {
            request
        };
        let bytes = request.to_bytes();
        tracing::debug!(
            "sync request to {peer}: {} B, budget {budget:?}",
            bytes.len()
        );
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                commons,
                budget,
                asked,
                proof: false,
            },
        );
        self.out.push(Output::Send { peer, id, bytes });
    }

    pub(super) fn follow(&mut self, peer: PeerId, commons: CommonsId, step: PullStep) {
        match step {
            PullStep::Send(SyncRequest::Fetch { .. })
                if self.must_wait_for_window(peer, commons) =>
            {
                // The charter still comes now: the live changes that flow outside the window
                // are admitted under it.
                match self
                    .session(peer, commons)
                    .and_then(PullSession::narrow_to_first)
                {
                    Some(charter) => self.send(peer, commons, charter),
                    None => self.defer_pull(peer, commons),
                }
            }
            PullStep::Send(request) => self.send(peer, commons, request),
            PullStep::Done => self.finish_pull(peer, commons, "synced"),
        }
    }

    pub(super) fn session(&mut self, peer: PeerId, commons: CommonsId) -> Option<&mut PullSession> {
        match self.pulls.get_mut(&(peer, commons)) {
            Some(Pull::Running(session)) => Some(session),
            _ => None,
        }
    }

    /// Ends a pull for good: it completed, or the peer refused it.
    pub(super) fn finish_pull(&mut self, peer: PeerId, commons: CommonsId, outcome: &str) {
        let key = (peer, commons);
        self.forget_bulk(peer, commons);
        let session = match self.pulls.remove(&key) {
            Some(Pull::Running(session)) => Some(session),
            _ => None,
        };
        let connected = self.is_connected(&peer);
        let state = self.peer.entry(peer).or_default();
        // The pull brought what the peer's held live changes were waiting for.
        state.pending = 0;
        let mut more = false;
        if let Some(session) = session {
            let report = state.report.get_or_insert_with(SyncReport::default);
            report.round_trips += session.stats.round_trips;
            report.commons += 1;
            self.counters.pull_round_trips += session.stats.round_trips;
            // Only when this pull got something: a responder listing documents it never
            // sends must not keep the node pulling.
            more = session.truncated() && outcome == "synced" && session.stats.docs_received > 0;
        }
        state.last_sync = Some((crate::replicas::now_unix(), outcome.to_string()));
        if more && connected {
            // The inventory listed more than one pull queues: pull again for the rest.
            self.pulls.insert(key, Pull::Again(self.now));
        }
        let running = self
            .pulls
            .iter()
            .any(|((_, c), pull)| *c == commons && matches!(pull, Pull::Running(_)));
        if !running {
            if let Some(sources) = self.news.remove(&commons) {
                if self.connected_peers().iter().any(|p| !sources.contains(p)) {
                    self.announce(commons);
                }
            }
        }
        self.complete_waiters();
    }

    /// Ends a pull that a dropped link or a failed request cut off. What it stored stays
    /// stored; the pull runs again on the next connection, or after [`RETRY_DELAY`] when the
    /// connection is still up, and asks only for what is still missing.
    pub(super) fn interrupt_pull(&mut self, peer: PeerId, commons: CommonsId, why: &str) {
        let key = (peer, commons);
        if let Some(Pull::Running(mut session)) = self.pulls.remove(&key) {
            let report = self.report(peer);
            report.round_trips += session.stats.round_trips;
            report.interruptions += 1;
            self.counters.pulls_interrupted += 1;
            session.interrupt();
            session.stats = Default::default();
            let retry = self.is_connected(&peer).then_some(self.now + RETRY_DELAY);
            self.pulls.insert(
                key,
                Pull::Interrupted {
                    session,
                    since: self.now,
                    retry,
                },
            );
        }
        tracing::info!("pull of {commons} from {peer} interrupted: {why}");
        self.peer.entry(peer).or_default().last_sync =
            Some((crate::replicas::now_unix(), format!("interrupted: {why}")));
        self.complete_waiters();
    }

    pub(super) fn on_failure(
        &mut self,
        id: RequestId,
        connection: Option<ConnectionId>,
        failure: Failure,
    ) {
        let Some(InFlight { peer, commons, .. }) = self.in_flight.remove(&id) else {
            return;
        };
        if self.session(peer, commons).is_none() {
            // Already counted when its connection closed.
            return;
        }
        match failure {
            Failure::Unsupported(why) => {
                self.report(peer)
                    .errors
                    .push(format!("request failed: {why}"));
                self.finish_pull(peer, commons, &format!("failed: {why}"));
            }
            Failure::Stalled { offence, why } => {
                if let Some(kind) = offence {
                    self.misbehaved(peer, kind);
                }
                // A stalled exchange means a dead link more often than a slow peer:
                // drop this connection so the peer is redialled on a fresh one.
                self.peer.entry(peer).or_default().link.on_failure();
                if let Some(connection) = connection {
                    self.out.push(Output::CloseConnection(connection));
                }
                self.interrupt_pull(peer, commons, &why);
            }
            Failure::Lost(why) => {
                self.peer.entry(peer).or_default().link.on_failure();
                self.interrupt_pull(peer, commons, &why);
            }
        }
    }

    pub(super) fn on_response(
        &mut self,
        flight: InFlight,
        bytes: &[u8],
        elapsed: Duration,
        transfer: Option<Duration>,
    ) {
        let InFlight {
            peer,
            commons,
            budget,
            asked,
            proof,
        } = flight;
        self.heard_from(peer);
        let link = &mut self.peer.entry(peer).or_default().link;
        link.on_response(bytes.len(), elapsed, budget, transfer);
        let budget = link.budget();
        tracing::debug!(
            "sync response from {peer}: {} B in {elapsed:?}; next budget {budget}",
            bytes.len(),
        );
        if let Some(session) = self.session(peer, commons) {
            session.set_budget(budget);
        }
        let response = match SyncResponse::from_bytes(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.misbehaved(peer, Refusal::MalformedResponse);
                self.finish_pull(peer, commons, &format!("malformed response: {e}"));
                return;
            }
        };
        if proof {
            self.on_proof_answer(peer, commons, &response);
            return;
        }
        // What a response brings is taken first; the session's dispatch then goes on.
        match &response {
            SyncResponse::InSync => self.report(peer).in_sync += 1,
            SyncResponse::NotJoined => {
                self.finish_pull(peer, commons, "peer does not replicate this commons");
                return;
            }
            SyncResponse::Refused { reason } => {
                self.report(peer).errors.push(reason.clone());
                self.finish_pull(peer, commons, &format!("refused: {reason}"));
                return;
            }
            SyncResponse::NotAMember => {
                self.refused_as_non_member(peer, commons);
                return;
            }
            SyncResponse::Proven => {
                self.misbehaved(peer, Refusal::MalformedResponse);
                self.finish_pull(peer, commons, "a proof's answer to a sync request");
                return;
            }
            SyncResponse::Inventory { genesis, .. } => {
                if !self.take_listing(peer, commons, genesis) {
                    return;
                }
            }
            SyncResponse::Summary { .. } | SyncResponse::Sketch { .. } => {}
            SyncResponse::Docs { items, .. } => {
                if !self.store_docs(peer, commons, items, &asked) {
                    return;
                }
            }
            SyncResponse::DocsV3 { items, .. } => {
                let items = self.expand_docs(peer, commons, items);
                if !self.store_docs(peer, commons, &items, &asked) {
                    return;
                }
            }
        }
        if matches!(response, SyncResponse::InSync) {
            if let Some(session) = self.session(peer, commons) {
                session.on_response(&response, &BTreeMap::new());
            }
            self.finish_pull(peer, commons, "in sync");
            return;
        }
        let wants = match &response {
            // Which documents a sketch lists needs the local digests first.
            SyncResponse::Sketch { sketch } => match self.local.local_docs(&commons, &|_, _| false)
            {
                Ok(digests) => ClockWants::for_sketch(sketch, &digests),
                Err(e) => {
                    self.finish_pull(peer, commons, &e.to_string());
                    return;
                }
            },
            _ => response.clock_wants(),
        };
        let local = match self.local.local_docs(&commons, &|p, d| wants.wants(p, d)) {
            Ok(local) => local,
            Err(e) => {
                self.finish_pull(peer, commons, &e.to_string());
                return;
            }
        };
        let step = match self.session(peer, commons) {
            Some(session) => session.on_response(&response, &local),
            None => PullStep::Done,
        };
        if matches!(response, SyncResponse::Inventory { .. }) {
            self.note_queued_wants();
            self.judge_listing(peer, commons);
        }
        self.follow(peer, commons, step);
    }

    /// A listing of the commons: joins it if wanted; false when the pull ended.
    fn take_listing(
        &mut self,
        peer: PeerId,
        commons: CommonsId,
        genesis: &Signed<CommonsGenesis>,
    ) -> bool {
        if !self.local.holds(&commons) {
            if !self.wanted.contains(&commons) || genesis.body.id() != commons {
                self.finish_pull(peer, commons, "not joined");
                return false;
            }
            if let Err(e) = self.local.join(genesis) {
                self.misbehaved(peer, Refusal::Item(ItemRefusal::of(&e)));
                self.finish_pull(peer, commons, &e.to_string());
                return false;
            }
            self.wanted.remove(&commons);
            if let Err(e) = self.local.set_wanted(&commons, false) {
                self.store_failed(&e);
            }
            self.subscribe_all();
            // Our profile in the commons, made by the join.
            self.publish_outbox();
            // Joined by its id: only now is its creator, and so its charter's id, known.
            let charter = hedgerow_protocol::DocGenesis::charter(commons, genesis.body.creator);
            if let Some(session) = self.session(peer, commons) {
                session.set_first(&charter.id());
            }
        }
        true
    }

    /// Rebuilds `/hedgerow/sync/3` payloads in full, from their own changes and this node's
    /// verified records, for [`Self::store_docs`] to verify and store like any others. A
    /// payload whose proof leaves out an author this node cannot derive (an honest peer's
    /// short clock digest matched another actor) is asked for again whole, which carries
    /// every author; any other that does not rebuild is the peer's offence.
    fn expand_docs(
        &mut self,
        peer: PeerId,
        commons: CommonsId,
        items: &[DocPayloadV3],
    ) -> Vec<DocPayload> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match self.local.expand_payload(&commons, item) {
                Ok(payload) => out.push(payload),
                Err(e) => {
                    let prefix = item.prefix();
                    let honest = matches!(
                        e,
                        ExpandError::UnknownAuthor { .. } | ExpandError::UnknownDocument { .. }
                    );
                    let again = matches!(e, ExpandError::UnknownAuthor { .. })
                        && self
                            .session(peer, commons)
                            .is_some_and(|s| s.refetch_whole(prefix));
                    let doc = hex::encode(prefix);
                    tracing::info!("document {doc}… from {peer} does not rebuild: {e}");
                    if !again {
                        self.report(peer)
                            .errors
                            .push(format!("document {doc}…: {e}"));
                        if !honest {
                            self.misbehaved(peer, Refusal::MalformedResponse);
                        }
                    }
                }
            }
        }
        out
    }

    /// Documents asked for: stores them, durably before asking for more; false when the pull
    /// ended.
    fn store_docs(
        &mut self,
        peer: PeerId,
        commons: CommonsId,
        items: &[DocPayload],
        asked: &HashSet<IdPrefix>,
    ) -> bool {
        let mut stored = 0;
        // A commons' charter first: the documents of the same response are admitted under it.
        let mut items: Vec<&DocPayload> = items.iter().collect();
        items.sort_by_key(|item| !self.local.is_charter(item));
        for item in items.iter().copied() {
            if !asked.contains(&id_prefix(&item.doc)) {
                // A pull stores only what it asked for.
                self.misbehaved(peer, Refusal::UnrequestedDocument);
                continue;
            }
            let ingested = self.local.ingest_payload(&commons, item);
            for (doc, rejection) in self.local.take_partly_refused() {
                // The rest of the document was stored; the blocked author's part is counted.
                let error = NodeError::Rejected(rejection);
                self.report(peer)
                    .errors
                    .push(format!("document {doc}: {error}"));
                self.refused(peer, &error);
            }
            match ingested {
                Ok(n) => stored += n,
                Err(e @ NodeError::Store(_)) => {
                    self.store_failed(&e);
                    self.finish_pull(peer, commons, &format!("store failed: {e}"));
                    return false;
                }
                Err(NodeError::Rejected(Rejection::MissingDependencies { .. }))
                    if self.local.knows_doc(&item.doc)
                        && self
                            .session(peer, commons)
                            .is_some_and(|s| s.refetch_whole(id_prefix(&item.doc))) =>
                {
                    // Our clock matched changes we do not hold: the peer holds the
                    // other twin of an equivocation. The whole document settles it.
                    tracing::info!("asking {peer} for all of document {}", item.doc);
                }
                Err(e) => {
                    if let NodeError::NotAdmitted(report) = &e {
                        stored += report.stored;
                    }
                    tracing::info!("refused document {} from {peer}: {e}", item.doc);
                    self.report(peer)
                        .errors
                        .push(format!("document {}: {e}", item.doc));
                    self.refused(peer, &e);
                }
            }
        }
        // Durable before asking for more: a cut-off sync keeps what it got.
        if let Err(e) = self.local.commit() {
            self.store_failed(&e);
            self.finish_pull(peer, commons, &format!("store failed: {e}"));
            return false;
        }
        if stored > 0 {
            self.news.entry(commons).or_default().insert(peer);
            // A charter that arrived may have made the commons' privacy known.
            self.subscribe_all();
        }
        self.counters.changes_received += stored as u64;
        self.counters.docs_received += items.len() as u64;
        if stored > 0 {
            // New documents may refer to files this node's policy fetches.
            self.blob_policy_changed();
        }
        let report = self.report(peer);
        report.changes_received += stored as u64;
        report.docs_received += items.len() as u64;
        true
    }

    /// Wants held by every running and interrupted pull.
    pub(super) fn queued_wants(&self) -> usize {
        self.pulls
            .values()
            .map(|pull| match pull {
                Pull::Running(session) | Pull::Deferred(session) => session.queued(),
                other => other.kept().map_or(0, PullSession::queued),
            })
            .sum()
    }

    /// Keeps the peak of [`Self::queued_wants`] for `status`.
    pub(super) fn note_queued_wants(&mut self) {
        let queued = self.queued_wants() as u64;
        self.counters.peak_queued_wants = self.counters.peak_queued_wants.max(queued);
    }
}
