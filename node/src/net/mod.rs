//! libp2p networking: the swarm, its behaviour and wire codec.
