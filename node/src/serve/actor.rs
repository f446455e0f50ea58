//! The thin I/O side of the running node: it owns the libp2p swarm, turns its events into
//! [`Input`]s for the [`Service`], carries the service's [`Output`]s back to the swarm, and
//! sleeps until the service's next [`Output::WakeAt`]. It decides nothing.

use super::handle::Call;
use super::service::{
    DhtInput, DhtOutput, Failure, InboundId, Input, Output, Reply, RequestId, Service, Token,
};
use super::stats::Refusal;
use crate::net::{Behaviour, BehaviourEvent, ByteCounters, FrameError};
use crate::replicas::Replicas;
use futures::StreamExt;
use libp2p::swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent};
use libp2p::{
    autonat, dcutr, gossipsub, identify, kad, mdns, ping, relay, request_response, Multiaddr,
    PeerId, Swarm,
};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use tokio::sync::oneshot;

type SyncEvent = request_response::Event<Vec<u8>, crate::net::ResponseFrame>;

/// The swarm, the service, and the tables that translate between their names for things.
pub(crate) struct Actor {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) service: Service<Replicas>,
    pub(crate) bytes: ByteCounters,
    /// Requests in flight, with when each was handed to the swarm.
    requests: HashMap<request_response::OutboundRequestId, (RequestId, Instant)>,
    channels: HashMap<InboundId, request_response::ResponseChannel<crate::net::ResponseFrame>>,
    /// Blob requests in flight.
    blob_requests: HashMap<request_response::OutboundRequestId, RequestId>,
    /// Blob requests waiting for our answer.
    blob_channels: HashMap<InboundId, request_response::ResponseChannel<crate::net::ResponseFrame>>,
    /// Blob requests answered and not yet sent whole, by libp2p's number.
    blob_answering: HashMap<request_response::InboundRequestId, InboundId>,
    /// Dials in progress, so their outcome reaches the redial backoff.
    dialing: HashMap<ConnectionId, Multiaddr>,
    /// Listeners through a hub's relay (reservations), by the hub they are on.
    relay_listeners: HashMap<libp2p::core::transport::ListenerId, PeerId>,
    /// Callers waiting for a [`Reply`].
    replies: HashMap<Token, oneshot::Sender<Reply>>,
    next_id: u64,
    /// When the service asked to be woken.
    pub(crate) wake: Instant,
    /// Where the documents that took changes are announced (the web page's live updates).
    changes: Option<tokio::sync::broadcast::Sender<super::DocChange>>,
    /// DHT lookups running, with the provider key each looks up.
    lookups: HashMap<kad::QueryId, [u8; 32]>,
}

impl Actor {
    /// Wraps a built swarm and a service, and runs the service's start.
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        service: Service<Replicas>,
        bytes: ByteCounters,
    ) -> Self {
        let now = Instant::now();
        let mut actor = Self {
            swarm,
            service,
            bytes,
            requests: HashMap::new(),
            channels: HashMap::new(),
            blob_requests: HashMap::new(),
            blob_channels: HashMap::new(),
            blob_answering: HashMap::new(),
            dialing: HashMap::new(),
            relay_listeners: HashMap::new(),
            replies: HashMap::new(),
            next_id: 0,
            // The first timer runs at once: it dials the bootstrap peers.
            wake: now,
            changes: None,
            lookups: HashMap::new(),
        };
        let outputs = actor.service.start(now);
        actor.apply(outputs);
        actor
    }

    /// Announces on `feed` each document that takes changes from now on.
    pub(crate) fn announce_changes(
        &mut self,
        feed: tokio::sync::broadcast::Sender<super::DocChange>,
    ) {
        self.service.local_mut().watch_changes();
        self.changes = Some(feed);
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Hands one input to the service and carries out what it decides.
    pub(crate) fn input(&mut self, input: Input) {
        let outputs = self.service.handle(input, Instant::now());
        self.apply(outputs);
    }

    /// Hands a handle's command to the service; its reply goes back to the caller.
    pub(crate) fn call(&mut self, call: Call) {
        let token = self.next_id();
        self.replies.insert(token, call.reply);
        self.input(Input::Command(token, call.command));
    }

    /// Runs the timer if it is due.
    pub(crate) fn timer(&mut self) {
        self.input(Input::Timer);
    }

    /// Polls the swarm for its next event.
    pub(crate) async fn next_event(&mut self) -> SwarmEvent<BehaviourEvent> {
        self.swarm.select_next_some().await
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            if let Some(input) = self.carry_out(output) {
                queue.extend(self.service.handle(input, Instant::now()));
            }
        }
        if let Some(feed) = &self.changes {
            for change in self.service.local_mut().take_changed() {
                // No listener (no page open) is not a failure.
                let _ = feed.send(change);
            }
        }
    }

    /// Does one output; some report back at once (a dial that cannot start).
    fn carry_out(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Send { peer, id, bytes } => {
                let request = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                self.requests.insert(request, (id, Instant::now()));
            }
            Output::Respond { id, bytes } => {
                if let Some(channel) = self.channels.remove(&id) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, bytes.into());
                }
            }
            Output::SendBlob { peer, id, bytes } => {
                let request = self.swarm.behaviour_mut().blob.send_request(&peer, bytes);
                self.blob_requests.insert(request, id);
            }
            Output::RespondBlob { id, bytes } => {
                if let Some(channel) = self.blob_channels.remove(&id) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .blob
                        .send_response(channel, bytes.into());
                }
            }
            Output::Publish {
                commons,
                topic,
                bytes,
                live,
            } => {
                let len = bytes.len();
                match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                    Ok(_) => {
                        self.bytes.record_gossip_published(len);
                        self.service.published(live);
                    }
                    // The same state was announced moments ago.
                    Err(gossipsub::PublishError::Duplicate) => {}
                    // No subscriber yet: peers get it by catch-up sync when they connect.
                    Err(e) => tracing::debug!("not published on {commons}: {e}"),
                }
            }
            Output::Validate {
                id,
                source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Output::Subscribe { commons, topic } => {
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                    tracing::warn!("cannot subscribe to {commons}: {e}");
                }
            }
            Output::Unsubscribe(topic) => {
                self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
            }
            Output::Dial(addr) => {
                let opts: DialOpts = addr.clone().into();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dialing.insert(id, addr);
                    }
                    Err(e) => {
                        tracing::debug!("cannot dial {addr}: {e}");
                        let reason = super::dial_error_text(&e);
                        return Some(Input::DialFailed(addr, reason));
                    }
                }
            }
            Output::ListenVia { relay, addr } => match self.swarm.listen_on(addr.clone()) {
                Ok(listener) => {
                    self.relay_listeners.insert(listener, relay);
                }
                Err(e) => {
                    tracing::debug!("cannot listen through {relay} at {addr}: {e}");
                    return Some(Input::Reservation {
                        relay,
                        event: super::ReservationEvent::Ended(e.to_string()),
                    });
                }
            },
            Output::StopListeningVia { relay } => {
                let listeners: Vec<_> = self
                    .relay_listeners
                    .iter()
                    .filter(|(_, r)| **r == relay)
                    .map(|(id, _)| *id)
                    .collect();
                for listener in listeners {
                    // Forgotten first: its `ListenerClosed` is not a reservation that ended.
                    self.relay_listeners.remove(&listener);
                    self.swarm.remove_listener(listener);
                }
            }
            // libp2p's relay serves, and tells reserving peers, only confirmed external
            // addresses.
            Output::AddExternal(addr) => self.swarm.add_external_address(addr),
            Output::RemoveExternal(addr) => self.swarm.remove_external_address(&addr),
            Output::Disconnect(peer) => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Output::CloseConnection(connection) => {
                let _ = self.swarm.close_connection(connection);
            }
            Output::Dht(order) => self.carry_out_dht(order),
            Output::WakeAt(at) => self.wake = at,
            Output::Reply(token, reply) => match self.replies.remove(&token) {
                // A caller that gave up has dropped its end: nothing to do.
                Some(to) => {
                    let _ = to.send(reply);
                }
                None => tracing::warn!("a reply nobody waits for"),
            },
        }
        None
    }

    /// Translates one swarm event.
    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let input = match event {
            SwarmEvent::NewListenAddr { address, .. } => Input::Listening(address),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => match self.relay_listeners.remove(&listener_id) {
                Some(relay) => Input::Reservation {
                    relay,
                    event: super::ReservationEvent::Ended(match reason {
                        Ok(()) => "closed".to_string(),
                        Err(e) => e.to_string(),
                    }),
                },
                None => return,
            },
            SwarmEvent::ExpiredListenAddr { address, .. } => Input::ListenClosed(address),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                let dialed = self.dialing.remove(&connection_id);
                self.input(Input::Connected {
                    peer: peer_id,
                    connection: connection_id,
                    addr: endpoint.get_remote_address().clone(),
                    dialer: endpoint.is_dialer(),
                    dialed,
                });
                // The listening side of a circuit sees only `/p2p/SRC`; its local address
                // names the hub.
                let local = match &endpoint {
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } => local_addr,
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => address,
                };
                match crate::net::reach::relay_of(local) {
                    Some(via) => Input::Relayed {
                        peer: peer_id,
                        connection: connection_id,
                        via,
                    },
                    None => return,
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                connection_id,
                ..
            } => Input::Closed {
                peer: peer_id,
                connection: connection_id,
                remaining: num_established,
            },
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                tracing::debug!("dial failed: {error}");
                match self.dialing.remove(&connection_id) {
                    Some(addr) => Input::DialFailed(addr, super::dial_error_text(&error)),
                    None => return,
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => match self.on_sync_event(event) {
                Some(input) => input,
                None => return,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Blob(event)) => match self.on_blob_event(event) {
                Some(input) => input,
                None => return,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => Input::Gossip {
                source: propagation_source,
                id: message_id,
                topic: message.topic,
                data: message.data,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) => Input::Subscribed {
                peer: peer_id,
                topic,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                Input::Discovered(found)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Expired(gone))) => {
                Input::Expired(gone)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // A node that lists a version speaks the ones before it too.
                let lists_v4 = info.protocols.contains(&crate::net::SYNC_PROTOCOL_V4);
                let lists_v3 = lists_v4 || info.protocols.contains(&crate::net::SYNC_PROTOCOL_V3);
                let v2 = lists_v3 || info.protocols.contains(&crate::net::SYNC_PROTOCOL_V2);
                let v3 = crate::net::codec::speaks_sync_v3() && lists_v3;
                let v4 = crate::net::codec::speaks_sync_v4() && lists_v4;
                self.input(Input::SyncVersion {
                    peer: peer_id,
                    v2,
                    v3,
                    v4,
                });
                // Reach learns which peers serve as a relay; the DHT the rest.
                let relay = info.protocols.contains(&crate::net::reach::HOP_PROTOCOL);
                self.input(Input::Identified {
                    peer: peer_id,
                    relay,
                });
                Input::Dht(DhtInput::Identified {
                    peer: peer_id,
                    kad: info.protocols.contains(&crate::net::KAD_PROTOCOL),
                    listen: info.listen_addrs,
                })
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => match self.on_kad_event(event) {
                Some(input) => input,
                None => return,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::StatusChanged {
                new,
                ..
            })) => Input::Nat(match new {
                autonat::NatStatus::Public(addr) => super::Nat::Public(addr),
                autonat::NatStatus::Private => super::Nat::Private,
                autonat::NatStatus::Unknown => super::Nat::Unknown,
            }),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(
                relay::client::Event::ReservationReqAccepted { relay_peer_id, .. },
            )) => Input::Reservation {
                relay: relay_peer_id,
                event: super::ReservationEvent::Accepted,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            })) => Input::HolePunch {
                peer: remote_peer_id,
                result: result.map_err(|e| e.to_string()),
            },
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => {
                tracing::debug!("relay: {event:?}");
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result,
            })) => {
                if let Err(e) = &result {
                    tracing::debug!("ping to {peer} failed: {e}");
                }
                Input::Ping {
                    peer,
                    connection,
                    ok: result.is_ok(),
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            _ => return,
        };
        self.input(input);
    }

    fn on_sync_event(&mut self, event: SyncEvent) -> Option<Input> {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let id = InboundId(self.next_id());
                    self.channels.insert(id, channel);
                    Some(Input::Request {
                        peer,
                        id,
                        bytes: request,
                    })
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let (id, sent_at) = self.requests.remove(&request_id)?;
                    Some(Input::Response {
                        id,
                        bytes: response.bytes,
                        elapsed: sent_at.elapsed(),
                        transfer: response.transfer,
                    })
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                connection_id,
                ..
            } => {
                let (id, _) = self.requests.remove(&request_id)?;
                let why = error.to_string();
                let failure = match &error {
                    request_response::OutboundFailure::UnsupportedProtocols => {
                        Failure::Unsupported(why)
                    }
                    request_response::OutboundFailure::Timeout => {
                        Failure::Stalled { offence: None, why }
                    }
                    request_response::OutboundFailure::Io(e) => Failure::Stalled {
                        offence: frame_error_kind(e),
                        why,
                    },
                    request_response::OutboundFailure::ConnectionClosed
                    | request_response::OutboundFailure::DialFailure => Failure::Lost(why),
                };
                Some(Input::Failure {
                    id,
                    connection: Some(connection_id),
                    failure,
                })
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // A request frame that failed to read never gets here (libp2p reports no
                // event for it); the codec counts those itself.
                tracing::debug!("inbound sync failure from {peer}: {error}");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }
}

impl Actor {
    fn on_blob_event(&mut self, event: SyncEvent) -> Option<Input> {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    let id = InboundId(self.next_id());
                    self.blob_channels.insert(id, channel);
                    self.blob_answering.insert(request_id, id);
                    Some(Input::BlobRequest {
                        peer,
                        id,
                        bytes: request,
                    })
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let id = self.blob_requests.remove(&request_id)?;
                    Some(Input::BlobResponse {
                        id,
                        bytes: response.bytes,
                    })
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                let id = self.blob_requests.remove(&request_id)?;
                tracing::debug!("blob request failed: {error}");
                let offence = match &error {
                    request_response::OutboundFailure::Io(e) => frame_error_kind(e),
                    _ => None,
                };
                Some(Input::BlobFailure { id, offence })
            }
            request_response::Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                tracing::debug!("inbound blob failure from {peer}: {error}");
                let id = self.blob_answering.remove(&request_id)?;
                Some(Input::BlobResponseDone { id })
            }
            request_response::Event::ResponseSent { request_id, .. } => {
                let id = self.blob_answering.remove(&request_id)?;
                Some(Input::BlobResponseDone { id })
            }
        }
    }
}

impl Actor {
    /// Does what the service asks of the DHT.
    fn carry_out_dht(&mut self, order: DhtOutput) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        match order {
            DhtOutput::AddAddresses { peer, addrs } => {
                for addr in addrs {
                    kad.add_address(&peer, addr);
                }
            }
            DhtOutput::Provide(key) => {
                if let Err(e) = kad.start_providing(kad::RecordKey::new(&key)) {
                    tracing::warn!("cannot announce a commons in the DHT: {e}");
                }
            }
            DhtOutput::StopProviding(key) => kad.stop_providing(&kad::RecordKey::new(&key)),
            DhtOutput::FindProviders(key) => {
                let id = kad.get_providers(kad::RecordKey::new(&key));
                self.lookups.insert(id, key);
            }
            DhtOutput::DialPeer { peer, via } => {
                // By id: the addresses come from the routing table and from the lookup that
                // named the peer (kad answers the swarm's question at once, while the lookup's
                // addresses are still known), plus the relayed ones through our hubs; the swarm
                // tries them side by side.
                // A relayed route may start beside a direct dial still hanging on a NAT (a TCP
                // connect times out after 30 s); without one, a dial already running is enough.
                let condition = if via.is_empty() {
                    libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing
                } else {
                    libp2p::swarm::dial_opts::PeerCondition::Disconnected
                };
                let opts = DialOpts::peer_id(peer)
                    .condition(condition)
                    .addresses(via)
                    .extend_addresses_through_behaviour()
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    tracing::debug!("cannot dial {peer} found in the DHT: {e}");
                }
            }
        }
    }

    /// Translates one Kademlia event; most are kad's own business.
    fn on_kad_event(&mut self, event: kad::Event) -> Option<Input> {
        let key_of = |key: &kad::RecordKey| <[u8; 32]>::try_from(key.as_ref()).ok();
        match event {
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats,
                step,
            } => match result {
                kad::QueryResult::StartProviding(result) => {
                    let key = match &result {
                        Ok(ok) => &ok.key,
                        Err(kad::AddProviderError::Timeout { key }) => key,
                    };
                    Some(Input::Dht(DhtInput::Announced {
                        key: key_of(key)?,
                        reached: stats.num_successes(),
                    }))
                }
                kad::QueryResult::GetProviders(result) => {
                    // The last step may name no key: the lookup is known by its query id.
                    let key = match step.last {
                        true => self.lookups.remove(&id)?,
                        false => *self.lookups.get(&id)?,
                    };
                    let providers = match result {
                        Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                            providers.into_iter().collect()
                        }
                        _ => Vec::new(),
                    };
                    Some(Input::Dht(DhtInput::Providers {
                        key,
                        providers,
                        done: step.last,
                    }))
                }
                _ => None,
            },
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::AddProvider {
                        record: Some(record),
                    },
            } => {
                let key = key_of(&record.key);
                let provider = record.provider;
                let store = self.swarm.behaviour_mut().kad.store_mut();
                if let Err(e) = kad::store::RecordStore::add_provider(store, record) {
                    tracing::debug!("provider record from {provider} not stored: {e}");
                    return None;
                }
                Some(Input::Dht(DhtInput::RecordStored {
                    key: key?,
                    provider,
                }))
            }
            _ => None,
        }
    }
}

/// The rejection reason of a sync frame the peer got wrong (too long, or cut short);
/// `None` for other I/O failures and for frames this node refused to write.
fn frame_error_kind(error: &std::io::Error) -> Option<Refusal> {
    if error.kind() == std::io::ErrorKind::InvalidInput {
        return None;
    }
    match error.get_ref()?.downcast_ref::<FrameError>()? {
        FrameError::TooLarge { .. } => Some(Refusal::OversizedFrame),
        FrameError::Truncated { .. } => Some(Refusal::TruncatedFrame),
        // A dead link, not a lie.
        FrameError::Stalled { .. } => None,
    }
}
