//! Hostile automerge bytes, as a peer or a crafted bundle file could send them: real
//! documents and changes with bytes changed and the chunk checksums recomputed (so automerge's
//! own checksum does not stop them). Every decode must return, accepted or refused, without
//! panicking through and without hanging: automerge 0.12 loops forever on some bundle chunks.

use hedgerow_protocol::automerge::transaction::Transactable;
use hedgerow_protocol::automerge::{ActorId, AutoCommit, Change, ObjType, ROOT};
use hedgerow_protocol::compact::CompactChanges;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// Mutated inputs per form.
const CASES: usize = 1500;
/// Longer than any honest decode of these few-KB inputs takes, even on a loaded debug build;
/// a decode still running then is taken to be looping.
const HANG_AFTER: Duration = Duration::from_secs(60);

/// A deterministic xorshift generator, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A design-like document edited by two authors, concurrently.
fn document() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from([1u8; 16]));
    let title = doc.put_object(ROOT, "name", ObjType::Text).expect("text");
    doc.splice_text(&title, 0, 0, "Bicycle seeder")
        .expect("splice");
    let steps = doc.put_object(ROOT, "steps", ObjType::List).expect("list");
    for i in 0..4 {
        let step = doc.insert_object(&steps, i, ObjType::Text).expect("step");
        doc.splice_text(
            &step,
            0,
            0,
            &"weld the frame and check it is square. ".repeat(3),
        )
        .expect("splice");
        doc.commit();
    }
    let mut other = doc.fork().with_actor(ActorId::from([2u8; 16]));
    other.splice_text(&title, 8, 0, "two-row ").expect("splice");
    other.put(ROOT, "stage", "prototype").expect("put");
    other.commit();
    doc.put(ROOT, "weight_kg", 42).expect("put");
    doc.commit();
    doc.merge(&mut other).expect("merge");
    doc
}

fn uleb(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_uleb(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0;
    for (i, byte) in bytes.iter().enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("unterminated length in a chunk this test built");
}

/// Changes one to three bytes of the first chunk's body (or cuts or extends it), then writes
/// the chunk back with a correct length and checksum, as a hostile peer would.
fn mutate(chunk: &[u8], rng: &mut Rng) -> Vec<u8> {
    let chunk_type = chunk[8];
    let (len, len_bytes) = read_uleb(&chunk[9..]);
    let start = 9 + len_bytes;
    let mut body = chunk[start..start + len].to_vec();
    let rest = &chunk[start + len..];
    match rng.below(5) {
        0 | 1 => {
            for _ in 0..=rng.below(3) {
                let at = rng.below(body.len());
                body[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let at = rng.below(body.len());
            body[at] = [0xff, 0x7f, 0x80, 0x00, 0x01][rng.below(5)];
        }
        3 => body.truncate(rng.below(body.len())),
        _ => {
            let at = rng.below(body.len());
            for _ in 0..=rng.below(4) {
                body.insert(at, [0xff, 0x80, 0x81][rng.below(3)]);
            }
        }
    }
    let mut hashed = vec![chunk_type];
    uleb(body.len(), &mut hashed);
    hashed.extend_from_slice(&body);
    let mut out = chunk[..4].to_vec();
    out.extend_from_slice(&Sha256::digest(&hashed)[..4]);
    out.extend_from_slice(&hashed);
    out.extend_from_slice(rest);
    out
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("deflate into memory");
    encoder.finish().expect("deflate into memory")
}

/// Decodes every input on a worker thread: how many were accepted and refused, or the name of
/// the first that did not return in time.
fn decode_all(inputs: Vec<(String, CompactChanges)>) -> Result<(usize, usize), String> {
    let (to_worker, work) = mpsc::channel::<CompactChanges>();
    let (to_test, results) = mpsc::channel::<bool>();
    std::thread::spawn(move || {
        for input in work {
            if to_test.send(input.decode().is_ok()).is_err() {
                return;
            }
        }
    });
    let (mut accepted, mut refused) = (0, 0);
    for (name, input) in inputs {
        to_worker.send(input).expect("worker alive");
        match results.recv_timeout(HANG_AFTER) {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(_) => return Err(name),
        }
    }
    Ok((accepted, refused))
}

#[test]
fn mutated_documents_and_changes_are_refused_or_accepted_never_hang() {
    let mut doc = document();
    let saved = doc.save();
    let changes: Vec<Change> = doc.get_changes(&[]);
    let raw: Vec<u8> = changes
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let mut rng = Rng(0x5eed_f00d);
    let mut inputs = Vec::new();
    for case in 0..CASES {
        inputs.push((
            format!("document case {case}"),
            CompactChanges::Document(mutate(&saved, &mut rng)),
        ));
        // The first change chunk mutated, the others intact behind it.
        inputs.push((
            format!("changes case {case}"),
            CompactChanges::Changes(deflate(&mutate(&raw, &mut rng))),
        ));
    }
    // What automerge's bundle writer makes, which no honest node sends.
    let heads = doc.get_heads();
    let bundle = doc
        .document()
        .bundle(heads)
        .expect("bundle")
        .bytes()
        .to_vec();
    for case in 0..CASES / 3 {
        let mutated = mutate(&bundle, &mut rng);
        inputs.push((
            format!("bundle case {case}"),
            CompactChanges::Document(mutated.clone()),
        ));
        inputs.push((
            format!("deflated bundle case {case}"),
            CompactChanges::Changes(deflate(&mutated)),
        ));
    }
    let total = inputs.len();
    // automerge's panics are caught and refused; keep their messages out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = decode_all(inputs);
    drop(std::panic::take_hook());
    let (accepted, refused) =
        outcome.unwrap_or_else(|name| panic!("decoding {name} did not return: automerge loops"));
    eprintln!("{total} hostile inputs: {accepted} decoded, {refused} refused");
    assert_eq!(accepted + refused, total);
    assert!(refused > total / 2, "most mutations must be refused");
    // The unmutated forms still decode: the screen refuses what is hostile, not what is honest.
    assert_eq!(
        CompactChanges::Document(saved)
            .decode()
            .expect("saved document")
            .len(),
        changes.len()
    );
    assert_eq!(
        CompactChanges::Changes(deflate(&raw))
            .decode()
            .expect("changes")
            .len(),
        changes.len()
    );
}
