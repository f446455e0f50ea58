//! How much one sync response may carry on the link to one peer.
//!
//! A response is all or nothing: when the link drops while it is in flight, every byte of it
//! already sent is wasted and the documents in it are asked again. On a LAN a big response
//! saves round trips; on a 64 kbit/s radio link a 512 KiB response takes over a minute and
//! is almost sure to be cut. So each peer gets its own budget, sized to what its link moves in
//! about [`TARGET_RESPONSE_TIME`]: a fresh peer starts small, the budget grows (at most
//! doubling per response) while full responses arrive quickly, and it halves after a
//! failed request. Pure logic with time passed in, so it is tested without a network.

use hedgerow_protocol::sync::{MAX_RESPONSE_BUDGET, MIN_RESPONSE_BUDGET};
use std::time::Duration;

/// Budget of the first fetch to a peer nothing is known about yet.
pub const START_BUDGET: u32 = 16 * 1024;
/// Largest budget a fast link grows to: the most any responder honours (4 MiB, every release).
/// A link reaches it only when it moved the previous responses at about 16 Mbit/s or more
/// (2 s of data), so a drop still wastes about [`TARGET_RESPONSE_TIME`]; at 512 KiB an initial
/// sync of a 5,000-design commons (35 MB) took 70 round trips.
pub const MAX_BUDGET: u32 = MAX_RESPONSE_BUDGET;
/// How long one response should take on the wire: a drop wastes at most about this much.
pub const TARGET_RESPONSE_TIME: Duration = Duration::from_secs(2);

/// What the node has learnt about the link to one peer.
#[derive(Debug, Clone)]
pub struct LinkEstimate {
    budget: u32,
    /// Shortest time any response took: the link's round trip plus the peer's work.
    latency_floor: Option<Duration>,
}

impl Default for LinkEstimate {
    fn default() -> Self {
        Self {
            budget: START_BUDGET,
            latency_floor: None,
        }
    }
}

impl LinkEstimate {
    /// The byte budget to ask for in the next fetch.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// A response of `bytes` arrived `elapsed` after its request was sent; `budget` is what
    /// the request asked for (`None` for requests without a budget, such as `Hello`), and
    /// `measured` the time its bytes took from the first to the last, when the transport
    /// measured it.
    ///
    /// That time is the link's alone: the time before the first byte also holds the
    /// responder's work, which on a busy or small responder is most of it (a 5,000-design
    /// initial sync from a loaded responder took 51 round trips sized by it). Without it the
    /// transfer is the time beyond the fastest response seen.
    pub fn on_response(
        &mut self,
        bytes: usize,
        elapsed: Duration,
        budget: Option<u32>,
        measured: Option<Duration>,
    ) {
        let floor = match self.latency_floor {
            Some(floor) => floor.min(elapsed),
            None => elapsed,
        };
        self.latency_floor = Some(floor);
        let Some(asked) = budget else {
            return;
        };
        // Time spent moving bytes, as opposed to waiting for the first one.
        let transfer = measured
            .unwrap_or_else(|| elapsed.saturating_sub(floor))
            .max(Duration::from_millis(20));
        let full = bytes as u64 * 2 >= u64::from(asked);
        if full {
            let rate = bytes as f64 / transfer.as_secs_f64();
            let sized = rate * TARGET_RESPONSE_TIME.as_secs_f64();
            let low = f64::from(self.budget) / 2.0;
            let high = f64::from(self.budget) * 2.0;
            self.budget = clamp_budget(sized.clamp(low, high));
        } else if transfer > TARGET_RESPONSE_TIME * 2 {
            // Even a part-filled response was slow: the link is slower than the budget assumes.
            self.budget = clamp_budget(f64::from(self.budget) / 2.0);
        }
    }

    /// A request to the peer failed (timed out, stalled, or its connection closed).
    pub fn on_failure(&mut self) {
        self.budget = clamp_budget(f64::from(self.budget) / 2.0);
    }
}

fn clamp_budget(bytes: f64) -> u32 {
    let low = f64::from(MIN_RESPONSE_BUDGET);
    let high = f64::from(MAX_BUDGET);
    bytes.clamp(low, high) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` full responses over a link of `rate` bytes/s and `rtt` round trip.
    fn run(link: &mut LinkEstimate, rate: f64, rtt: Duration, n: usize) {
        for _ in 0..n {
            let asked = link.budget();
            let elapsed = rtt + Duration::from_secs_f64(f64::from(asked) / rate);
            link.on_response(asked as usize, elapsed, Some(asked), None);
        }
    }

    #[test]
    fn a_fresh_peer_starts_small() {
        assert_eq!(LinkEstimate::default().budget(), START_BUDGET);
    }

    #[test]
    fn a_64_kbit_link_settles_near_two_seconds_of_data() {
        let mut link = LinkEstimate::default();
        link.on_response(20, Duration::from_millis(300), None, None);
        run(&mut link, 8_000.0, Duration::from_millis(300), 20);
        let budget = f64::from(link.budget());
        assert!(
            (12_000.0..=20_000.0).contains(&budget),
            "64 kbit/s link settled at {budget} bytes"
        );
    }

    #[test]
    fn a_lan_grows_to_the_maximum_by_doublings() {
        let mut link = LinkEstimate::default();
        link.on_response(20, Duration::from_millis(1), None, None);
        run(&mut link, 50e6, Duration::from_millis(1), 1);
        assert_eq!(
            link.budget(),
            START_BUDGET * 2,
            "at most doubles per response"
        );
        run(&mut link, 50e6, Duration::from_millis(1), 10);
        assert_eq!(link.budget(), MAX_BUDGET);
    }

    /// Issue 11: a 5,000-design initial sync took 82 round trips with responses capped at
    /// 512 KiB; a fast link now grows to the 4 MiB every responder honours.
    #[test]
    fn a_fast_link_grows_to_four_mebibytes_in_eight_responses() {
        let mut link = LinkEstimate::default();
        link.on_response(20, Duration::from_millis(1), None, None);
        run(&mut link, 100e6, Duration::from_millis(1), 8);
        assert_eq!(link.budget(), 4 * 1024 * 1024);
        // A link that then slows to 1 Mbit/s is back to about 2 s of data within a few
        // responses, and a failure halves it at once.
        run(&mut link, 125_000.0, Duration::from_millis(1), 4);
        assert!(link.budget() <= 300_000, "budget {}", link.budget());
        link.on_failure();
        assert!(link.budget() <= 150_000);
    }

    #[test]
    fn seconds_of_latency_do_not_shrink_the_budget() {
        let mut link = LinkEstimate::default();
        link.on_response(20, Duration::from_secs(3), None, None);
        run(&mut link, 100_000.0, Duration::from_secs(3), 20);
        assert!(link.budget() >= 150_000, "budget {}", link.budget());
    }

    #[test]
    fn failures_halve_down_to_the_minimum() {
        let mut link = LinkEstimate::default();
        link.on_failure();
        assert_eq!(link.budget(), START_BUDGET / 2);
        for _ in 0..10 {
            link.on_failure();
        }
        assert_eq!(link.budget(), MIN_RESPONSE_BUDGET);
    }

    #[test]
    fn small_responses_say_nothing_about_the_rate() {
        let mut link = LinkEstimate::default();
        link.on_response(20, Duration::from_millis(100), None, None);
        link.on_response(500, Duration::from_millis(150), Some(START_BUDGET), None);
        assert_eq!(link.budget(), START_BUDGET);
    }

    /// A responder that spends seconds packing each response, over a fast link: the bytes
    /// themselves arrive in milliseconds, so the budget still grows to the maximum; timed
    /// from the request alone it stays near what the responder packs in two seconds.
    #[test]
    fn a_busy_responder_does_not_shrink_a_fast_links_budget() {
        let mut timed = LinkEstimate::default();
        let mut untimed = LinkEstimate::default();
        timed.on_response(20, Duration::from_millis(1), None, None);
        untimed.on_response(20, Duration::from_millis(1), None, None);
        for _ in 0..20 {
            for (link, measured) in [(&mut timed, true), (&mut untimed, false)] {
                let asked = link.budget();
                // Packing at 400 KB/s; the link moves 100 MB/s.
                let work = Duration::from_secs_f64(f64::from(asked) / 400e3);
                let wire = Duration::from_secs_f64(f64::from(asked) / 100e6);
                let transfer = measured.then_some(wire);
                link.on_response(asked as usize, work + wire, Some(asked), transfer);
            }
        }
        assert_eq!(timed.budget(), MAX_BUDGET);
        assert!(
            untimed.budget() < MAX_BUDGET / 4,
            "untimed {}",
            untimed.budget()
        );
    }
}
