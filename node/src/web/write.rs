//! The writing side of the web page: changes signed in the browser by the browser's own key.
//!
//! Merged into the router by [`super::routes`] unless the node serves read-only; every request
//! here has passed [`super::guard`] (same-origin, size, rate). The round trip is JSON over
//! `fetch` from `sign.js` (see [`crate::external_sign`] for what the node checks):
//!
//! - `POST /api/write/prepare` `{key, write}` → `{token, doc, summary, sign: [{part, domain,
//!   preimage, digest}]}`: the node builds the change for the key (hex) and keeps it, one per
//!   (key, document), for [`PENDING_TTL_SECS`] seconds.
//! - `POST /api/write/commit` `{key, token, signatures: {genesis?, change}}` → `{doc, change,
//!   author}`; 409 when the document moved since the prepare (the page prepares again).
//! - `POST /api/enrol/device` `{key, code}`: a `device add` link code made on this node makes the
//!   browser a device of that person. A guest redeems an invitation code through prepare/commit
//!   (`{"write": "redeem", "code": ...}`), signed by its own key.
//!
//! Every write endpoint also wants the header `X-Hedgerow-Write: 1` and a JSON body: a form on
//! another site can send neither without a CORS preflight, which this node never grants.
//! Enrolment is rate-limited hard (a link code costs 64 MiB of argon2id to check); prepares
//! per address too. Without JavaScript the write forms post to `/write/needs-js`, which says
//! signing needs it.
//!
//! [`PENDING_TTL_SECS`]: hedgerow_protocol::external_sign::PENDING_TTL_SECS

use super::i18n::Lang;
use super::layout::Page;
use super::WebState;
use crate::api::{Reply, Request};
use crate::external_sign::{ExternalError, ExternalSignatures, ExternalWrite, Prepared};
use crate::replicas::NodeError;
use crate::serve::HandleError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hedgerow_protocol::external_sign::{Pending, PendingError};
use hedgerow_protocol::{AuthorKey, DocId, Signature};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The header every write request must carry (value `1`).
pub const WRITE_HEADER: &str = "x-hedgerow-write";

/// Where the signing script is served.
pub const SIGN_JS_PATH: &str = "/assets/sign.js";

/// Enrolments (link or invitation codes) one address may try in a burst, then one per
/// [`ENROL_EVERY_SECS`].
pub const ENROL_BURST: f64 = 5.0;
/// Seconds between enrolments once the burst is spent.
pub const ENROL_EVERY_SECS: f64 = 20.0;
/// Enrolments over every address in a burst, then one per [`ENROL_ALL_EVERY_SECS`] (each link
/// code check runs argon2id over 64 MiB).
pub const ENROL_ALL_BURST: f64 = 10.0;
/// Seconds between enrolments over every address once that burst is spent.
pub const ENROL_ALL_EVERY_SECS: f64 = 2.0;
/// Prepares one address may make in a burst, then one per second.
pub const PREPARE_BURST: f64 = 60.0;

/// The signing script and the vendored libraries it imports, served from this node only.
const SCRIPTS: &[(&str, &str)] = &[
    (SIGN_JS_PATH, include_str!("../../assets/web/sign.js")),
    (
        "/assets/vendor/noble-ed25519/index.js",
        include_str!("../../assets/web/vendor/noble-ed25519/index.js"),
    ),
    (
        "/assets/vendor/noble-hashes/sha2.js",
        include_str!("../../assets/web/vendor/noble-hashes/sha2.js"),
    ),
    (
        "/assets/vendor/noble-hashes/blake3.js",
        include_str!("../../assets/web/vendor/noble-hashes/blake3.js"),
    ),
    (
        "/assets/vendor/noble-hashes/blake2.js",
        include_str!("../../assets/web/vendor/noble-hashes/blake2.js"),
    ),
    (
        "/assets/vendor/noble-hashes/_blake.js",
        include_str!("../../assets/web/vendor/noble-hashes/_blake.js"),
    ),
    (
        "/assets/vendor/noble-hashes/_md.js",
        include_str!("../../assets/web/vendor/noble-hashes/_md.js"),
    ),
    (
        "/assets/vendor/noble-hashes/_u64.js",
        include_str!("../../assets/web/vendor/noble-hashes/_u64.js"),
    ),
    (
        "/assets/vendor/noble-hashes/utils.js",
        include_str!("../../assets/web/vendor/noble-hashes/utils.js"),
    ),
];

/// What the write side keeps between requests: prepared changes and enrolment rates.
#[derive(Debug, Default)]
pub struct Writes {
    pending: Mutex<Pending<Box<Prepared>>>,
    enrol: Mutex<Rates>,
    prepare: Mutex<Rates>,
}

/// Token buckets per address plus one over every address.
#[derive(Debug, Default)]
struct Rates {
    per_ip: HashMap<IpAddr, (f64, Instant)>,
    all: Option<(f64, Instant)>,
}

/// Most addresses tracked per bucket set; past it the full ones are forgotten.
const MAX_TRACKED: usize = 4096;

fn take(slot: &mut (f64, Instant), burst: f64, every: f64, now: Instant) -> bool {
    let elapsed = now.saturating_duration_since(slot.1).as_secs_f64();
    let tokens = (slot.0 + elapsed / every).min(burst);
    if tokens < 1.0 {
        *slot = (tokens, now);
        return false;
    }
    *slot = (tokens - 1.0, now);
    true
}

impl Rates {
    /// Takes one from `ip`'s allowance (`burst`, then one per `every` seconds) and, when
    /// `all` is given, from everyone's; `false` when either is spent.
    fn allow(
        &mut self,
        ip: IpAddr,
        burst: f64,
        every: f64,
        all: Option<(f64, f64)>,
        now: Instant,
    ) -> bool {
        if self.per_ip.len() >= MAX_TRACKED && !self.per_ip.contains_key(&ip) {
            self.per_ip.retain(|_, slot| {
                now.saturating_duration_since(slot.1).as_secs_f64() / every + slot.0 < burst
            });
        }
        let mine = self.per_ip.entry(ip).or_insert((burst, now));
        if !take(mine, burst, every, now) {
            return false;
        }
        match all {
            Some((all_burst, all_every)) => {
                let everyone = self.all.get_or_insert((all_burst, now));
                take(everyone, all_burst, all_every, now)
            }
            None => true,
        }
    }
}

/// The write routes and the signing script.
pub fn routes() -> Router<WebState> {
    let writes = Arc::new(Writes::default());
    let mut router = Router::new()
        .route("/api/write/prepare", post(prepare))
        .route("/api/write/commit", post(commit))
        .route("/api/enrol/device", post(enrol_device))
        .route("/write/needs-js", post(needs_js).get(needs_js))
        .route("/write/enrol", get(enrol_page))
        .route("/write/note/{target}", get(note_page))
        .route("/write/design/{id}", get(design_page));
    for (path, text) in SCRIPTS {
        router = router.route(
            path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    *text,
                )
                    .into_response()
            }),
        );
    }
    router.layer(Extension(writes))
}

/// A write refused, as JSON `{error}` with its status.
#[derive(Debug)]
pub struct WriteError {
    status: StatusCode,
    text: String,
}

impl WriteError {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        WriteError {
            status,
            text: text.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        json(self.status, &ErrorBody { error: &self.text })
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

impl From<HandleError> for WriteError {
    fn from(error: HandleError) -> Self {
        let HandleError::Refused(error) = error else {
            return WriteError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the node is not answering; try again",
            );
        };
        let status = match &error {
            NodeError::External(e) => match e {
                ExternalError::Stale => StatusCode::CONFLICT,
                ExternalError::UnknownKey { .. }
                | ExternalError::NotAllowed { .. }
                | ExternalError::BadSignature { .. }
                | ExternalError::NotCertifier => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            NodeError::NotAdmitted(_) | NodeError::Community(_) => StatusCode::FORBIDDEN,
            NodeError::UnknownDoc { .. } | NodeError::UnknownCommons(_) => StatusCode::NOT_FOUND,
            NodeError::Edit(_)
            | NodeError::Rejected(_)
            | NodeError::Invalid(_)
            | NodeError::Schema(_)
            | NodeError::Reference { .. }
            | NodeError::Local(_)
            | NodeError::Device(_) => StatusCode::BAD_REQUEST,
            other => {
                // Store and home errors may name paths of the home: logged, not shown.
                tracing::warn!("web write: {other}");
                return WriteError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the node could not store this; see its log",
                );
            }
        };
        WriteError::new(status, error.to_string())
    }
}

/// Checks the write header and the JSON body; returns the parsed body.
fn body<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, WriteError> {
    if headers.get(WRITE_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(WriteError::new(
            StatusCode::FORBIDDEN,
            "writes come only from this node's page script (header X-Hedgerow-Write)",
        ));
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json_type {
        return Err(WriteError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| WriteError::new(StatusCode::BAD_REQUEST, format!("malformed request: {e}")))
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], WriteError> {
    let bad = || {
        WriteError::new(
            StatusCode::BAD_REQUEST,
            format!("{what} must be {N} bytes of hex"),
        )
    };
    if text.len() != 2 * N || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(text: &str) -> Result<AuthorKey, WriteError> {
    Ok(AuthorKey(unhex::<32>(text, "key")?))
}

fn now_unix() -> u64 {
    u64::try_from(crate::replicas::now_unix()).unwrap_or(0)
}

#[derive(Deserialize)]
struct PrepareBody {
    key: String,
    write: ExternalWrite,
}

#[derive(Serialize)]
struct SignItem {
    part: hedgerow_protocol::external_sign::SignedPart,
    domain: String,
    preimage: String,
    digest: String,
}

#[derive(Serialize)]
struct PrepareReply {
    token: String,
    doc: DocId,
    summary: String,
    sign: Vec<SignItem>,
}

async fn prepare(
    State(state): State<WebState>,
    Extension(writes): Extension<Arc<Writes>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, WriteError> {
    let request: PrepareBody = body(&headers, &bytes)?;
    let author = key(&request.key)?;
    let enrolling = matches!(request.write, ExternalWrite::Redeem { .. });
    let allowed = match writes.prepare.lock() {
        Ok(mut rates) if enrolling => rates.allow(
            peer.ip(),
            ENROL_BURST,
            ENROL_EVERY_SECS,
            Some((ENROL_ALL_BURST, ENROL_ALL_EVERY_SECS)),
            Instant::now(),
        ),
        Ok(mut rates) => rates.allow(peer.ip(), PREPARE_BURST, 1.0, None, Instant::now()),
        Err(_) => false,
    };
    if !allowed {
        return Err(WriteError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many writes from this address; wait a minute",
        ));
    }
    let Reply::ExternalPrepared(prepared) = state
        .node
        .store(Request::ExternalPrepare {
            author,
            write: request.write,
        })
        .await?
    else {
        return Err(WriteError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the node answered another request",
        ));
    };
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).map_err(|_| {
        WriteError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no randomness for a token",
        )
    })?;
    let reply = PrepareReply {
        token: hex(&token),
        doc: prepared.doc,
        summary: prepared.summary.clone(),
        sign: prepared
            .to_sign()
            .into_iter()
            .map(|item| SignItem {
                part: item.part,
                domain: item.domain,
                preimage: hex(&item.preimage),
                digest: hex(&item.digest),
            })
            .collect(),
    };
    let doc = prepared.doc;
    writes
        .pending
        .lock()
        .map_err(|_| {
            WriteError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "pending changes unavailable",
            )
        })?
        .insert(token, author, doc, prepared, now_unix())
        .map_err(|e| WriteError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(json(StatusCode::OK, &reply))
}

#[derive(Deserialize)]
struct CommitSignatures {
    #[serde(default)]
    genesis: Option<String>,
    change: String,
}

#[derive(Deserialize)]
struct CommitBody {
    key: String,
    token: String,
    signatures: CommitSignatures,
}

async fn commit(
    State(state): State<WebState>,
    Extension(writes): Extension<Arc<Writes>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, WriteError> {
    let request: CommitBody = body(&headers, &bytes)?;
    let author = key(&request.key)?;
    let token = unhex::<16>(&request.token, "token")?;
    let signature = |text: &str| Ok::<_, WriteError>(Signature(unhex::<64>(text, "signature")?));
    let signatures = ExternalSignatures {
        genesis: request
            .signatures
            .genesis
            .as_deref()
            .map(signature)
            .transpose()?,
        change: signature(&request.signatures.change)?,
    };
    let prepared = writes
        .pending
        .lock()
        .map_err(|_| {
            WriteError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "pending changes unavailable",
            )
        })?
        .take(&token, &author, now_unix())
        .map_err(|e| {
            let status = match e {
                PendingError::WrongKey => StatusCode::FORBIDDEN,
                // Gone or expired: preparing again is the cure.
                _ => StatusCode::CONFLICT,
            };
            WriteError::new(status, e.to_string())
        })?;
    let Reply::ExternalCommitted(committed) = state
        .node
        .store(Request::ExternalCommit {
            prepared,
            signatures: Box::new(signatures),
        })
        .await?
    else {
        return Err(WriteError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the node answered another request",
        ));
    };
    Ok(json(StatusCode::OK, &committed))
}

#[derive(Deserialize)]
struct EnrolBody {
    key: String,
    code: String,
}

async fn enrol_device(
    State(state): State<WebState>,
    Extension(writes): Extension<Arc<Writes>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, WriteError> {
    let request: EnrolBody = body(&headers, &bytes)?;
    let device = key(&request.key)?;
    let allowed = writes.enrol.lock().is_ok_and(|mut rates| {
        rates.allow(
            peer.ip(),
            ENROL_BURST,
            ENROL_EVERY_SECS,
            Some((ENROL_ALL_BURST, ENROL_ALL_EVERY_SECS)),
            Instant::now(),
        )
    });
    if !allowed {
        return Err(WriteError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many codes tried; wait a minute",
        ));
    }
    let Reply::DeviceEnrolled(enrolled) = state
        .node
        .store(Request::ExternalEnrolDevice {
            code: request.code,
            device,
        })
        .await?
    else {
        return Err(WriteError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the node answered another request",
        ));
    };
    Ok(json(StatusCode::OK, &enrolled))
}

/// The page's own words for writing, in English and French.
struct Words {
    needs_js: &'static str,
    enrol: &'static str,
    enrol_intro: &'static str,
    device_code: &'static str,
    device_help: &'static str,
    link: &'static str,
    guest_code: &'static str,
    guest_help: &'static str,
    join: &'static str,
    this_key: &'static str,
    add_note: &'static str,
    note_text: &'static str,
    note_kind: &'static str,
    save: &'static str,
    built: &'static str,
    built_place: &'static str,
    edit_field: &'static str,
    field: &'static str,
    value: &'static str,
    edit_step: &'static str,
    step: &'static str,
    add_step: &'static str,
    text: &'static str,
    saved: &'static str,
    first_time: &'static str,
    edit_design: &'static str,
    edit_note: &'static str,
    back: &'static str,
}

const EN: Words = Words {
    needs_js: "Signing what you write needs JavaScript: this page signs it in your browser, with a key that never leaves it. Turn JavaScript on to write; reading works without it.",
    enrol: "Write from this browser",
    enrol_intro: "What you write here is signed by a key this browser made and keeps; the node never sees it. Link the browser to yourself, or join as a guest.",
    device_code: "Device link code",
    device_help: "Run `hedgerow device add NAME` on this node and type the code it prints.",
    link: "Link this browser",
    guest_code: "Invitation code",
    guest_help: "The code (hri1...) the host shows for guests.",
    join: "Join as a guest",
    this_key: "This browser's key:",
    add_note: "Add a note",
    note_text: "Note",
    note_kind: "Kind",
    save: "Sign and save",
    built: "I built this",
    built_place: "Where (optional)",
    edit_field: "Change a field",
    field: "Field",
    value: "New value",
    edit_step: "Rewrite a step",
    step: "Step number",
    add_step: "Add a step",
    text: "Text",
    saved: "Saved and signed",
    first_time: "First time writing from this browser? Link it to yourself or join as a guest",
    edit_design: "Edit this design (members)",
    edit_note: "Edit this note",
    back: "Back to the page",
};

const FR: Words = Words {
    needs_js: "Signer ce que vous écrivez demande JavaScript : cette page le signe dans votre navigateur, avec une clé qui n'en sort jamais. Activez JavaScript pour écrire ; la lecture fonctionne sans.",
    enrol: "Écrire depuis ce navigateur",
    enrol_intro: "Ce que vous écrivez ici est signé par une clé que ce navigateur a créée et garde ; le nœud ne la voit jamais. Liez ce navigateur à vous, ou rejoignez en invité.",
    device_code: "Code de liaison d'appareil",
    device_help: "Lancez `hedgerow device add NOM` sur ce nœud et tapez le code affiché.",
    link: "Lier ce navigateur",
    guest_code: "Code d'invitation",
    guest_help: "Le code (hri1...) que l'hôte montre aux invités.",
    join: "Rejoindre en invité",
    this_key: "Clé de ce navigateur :",
    add_note: "Ajouter une note",
    note_text: "Note",
    note_kind: "Type",
    save: "Signer et enregistrer",
    built: "Je l'ai construit",
    built_place: "Où (facultatif)",
    edit_field: "Modifier un champ",
    field: "Champ",
    value: "Nouvelle valeur",
    edit_step: "Réécrire une étape",
    step: "Numéro d'étape",
    add_step: "Ajouter une étape",
    text: "Texte",
    saved: "Enregistré et signé",
    first_time: "Première fois que vous écrivez depuis ce navigateur ? Liez-le à vous ou rejoignez en invité",
    edit_design: "Modifier cette conception (membres)",
    edit_note: "Modifier cette note",
    back: "Retour à la page",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Fr => &FR,
        Lang::En => &EN,
    }
}

/// The script tag write forms need (an ES module from this node; no inline script).
pub fn script() -> Markup {
    html! { script type="module" src=(SIGN_JS_PATH) {} }
}

/// Where a browser links itself to a person or joins as a guest.
pub const ENROL_PATH: &str = "/write/enrol";

/// Opens a write form: posted by `sign.js`, or without JavaScript to `/write/needs-js`. Its id
/// (`write-KIND`) lets a live update of the page keep the form, and what is typed in it.
fn form(lang: Lang, write: &str, body: Markup) -> Markup {
    let w = words(lang);
    html! {
        form.write id={ "write-" (write) } method="post" action="/write/needs-js" data-write=(write) data-done=(w.saved) data-reset[write != "note-edit"] {
            (body)
            p.status role="status" aria-live="polite" data-status {}
        }
    }
}

/// The "add a note" form for a design or event page; `back` is the page's own address, where
/// the enrolment page links back to.
pub fn note_form(lang: Lang, target: &DocId, back: &str) -> Markup {
    let w = words(lang);
    form(
        lang,
        "note",
        html! {
            h2 { (w.add_note) }
            noscript { p.notice { (w.needs_js) } }
            input type="hidden" name="target" value=(target);
            label for="note-body" { (w.note_text) }
            textarea #note-body name="body" required rows="4" maxlength="10000" {}
            label for="note-kind" { (w.note_kind) }
            select #note-kind name="kind" {
                @for kind in hedgerow_protocol::schema::note::NOTE_KINDS {
                    option value=(kind) selected[*kind == "comment"] { (kind) }
                }
            }
            button type="submit" { (w.save) }
            p.meta { a href={ (ENROL_PATH) "?back=" (super::read::designs::url_encode(back)) } { (w.first_time) } }
        },
    )
}

/// The "I built this" form of a design page.
pub fn built_form(lang: Lang, design: &DocId) -> Markup {
    let w = words(lang);
    form(
        lang,
        "built",
        html! {
            h2 { (w.built) }
            noscript { p.notice { (w.needs_js) } }
            input type="hidden" name="doc" value=(design);
            label for="built-place" { (w.built_place) }
            input #built-place name="place" maxlength="200";
            button type="submit" { (w.built) }
        },
    )
}

/// The link from a design page to its members' edit forms.
pub fn edit_design_link(lang: Lang, design: &DocId) -> Markup {
    html! { p { a href={ "/write/design/" (design) } { (words(lang).edit_design) } } }
}

/// The form that rewrites a note's text (its author's, or a steward's).
pub fn note_edit_form(lang: Lang, note: &DocId, body: &str) -> Markup {
    let w = words(lang);
    form(
        lang,
        "note-edit",
        html! {
            h2 { (w.edit_note) }
            noscript { p.notice { (w.needs_js) } }
            input type="hidden" name="doc" value=(note);
            input type="hidden" name="field" value="body";
            label for="note-edit-body" { (w.note_text) }
            textarea #note-edit-body name="value" required rows="4" maxlength="10000" { (body) }
            button type="submit" { (w.save) }
        },
    )
}

/// The member forms of a design: "I built this", a field, a step.
pub fn design_forms(lang: Lang, design: &DocId) -> Markup {
    let w = words(lang);
    html! {
        (built_form(lang, design))
        (form(lang, "set", html! {
            h2 { (w.edit_field) }
            input type="hidden" name="doc" value=(design);
            label for="field-name" { (w.field) }
            select #field-name name="field" {
                @for field in ["name", "summary", "stage", "licence.hardware", "licence.documentation"] {
                    option value=(field) { (field) }
                }
            }
            label for="field-value" { (w.value) }
            textarea #field-value name="value" rows="3" {}
            button type="submit" { (w.save) }
        }))
        (form(lang, "step", html! {
            h2 { (w.edit_step) }
            input type="hidden" name="doc" value=(design);
            label for="step-number" { (w.step) }
            input #step-number name="step" type="number" min="1" required;
            label for="step-text" { (w.text) }
            textarea #step-text name="text" rows="3" required {}
            button type="submit" { (w.save) }
        }))
        (form(lang, "add-step", html! {
            h2 { (w.add_step) }
            input type="hidden" name="doc" value=(design);
            label for="new-step" { (w.text) }
            textarea #new-step name="text" rows="3" required {}
            button type="submit" { (w.save) }
        }))
    }
}

/// The enrolment forms: a device link code, or a guest's invitation code.
pub fn enrol_forms(lang: Lang) -> Markup {
    let w = words(lang);
    html! {
        p { (w.enrol_intro) }
        noscript { p.notice { (w.needs_js) } }
        p { (w.this_key) " " code data-browser-key {} }
        (form(lang, "enrol-device", html! {
            label for="device-code" { (w.device_code) }
            p.help { (w.device_help) }
            input #device-code name="code" required autocomplete="off" maxlength="40";
            button type="submit" { (w.link) }
        }))
        (form(lang, "enrol-guest", html! {
            label for="guest-code" { (w.guest_code) }
            p.help { (w.guest_help) }
            input #guest-code name="code" required autocomplete="off" maxlength="8192";
            button type="submit" { (w.join) }
        }))
    }
}

fn page(lang: Lang, title: &str, body: Markup) -> Response {
    Page::new(lang, title, html! { h1 { (title) } (body) (script()) }).into_response()
}

/// Where the enrolment page links back to.
#[derive(Debug, Default, Deserialize)]
struct BackQuery {
    #[serde(default)]
    back: Option<String>,
}

/// A page of this node's commons to link back to: a path under `/c/` only, so the link can
/// lead nowhere else.
fn back_link(back: Option<&str>) -> Option<&str> {
    back.filter(|b| {
        b.starts_with("/c/")
            && b.len() <= 300
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/-_.?=&%".contains(&c))
    })
}

async fn enrol_page(
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<BackQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let w = words(lang);
    let back = back_link(query.back.as_deref());
    page(
        lang,
        w.enrol,
        html! {
            (enrol_forms(lang))
            @if let Some(back) = back { p { a href=(back) { (w.back) } } }
        },
    )
}

async fn note_page(headers: HeaderMap, Path(target): Path<String>) -> Response {
    let lang = Lang::of(&headers);
    match target.parse::<DocId>() {
        Ok(target) => page(
            lang,
            words(lang).add_note,
            note_form(lang, &target, &format!("/write/note/{target}")),
        ),
        Err(_) => super::read::not_found(headers).await,
    }
}

async fn design_page(headers: HeaderMap, Path(id): Path<String>) -> Response {
    let lang = Lang::of(&headers);
    match id.parse::<DocId>() {
        Ok(id) => page(lang, words(lang).edit_field, design_forms(lang, &id)),
        Err(_) => super::read::not_found(headers).await,
    }
}

/// Where write forms go without JavaScript: a page saying signing needs it.
async fn needs_js(headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let w = words(lang);
    let mut response = Page::new(
        lang,
        w.enrol,
        html! { h1 { (w.enrol) } p.notice { (w.needs_js) } },
    )
    .into_response();
    *response.status_mut() = StatusCode::OK;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn enrolment_is_limited_per_address_and_over_all() {
        let mut rates = Rates::default();
        let start = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let limits = (
            ENROL_BURST,
            ENROL_EVERY_SECS,
            Some((ENROL_ALL_BURST, ENROL_ALL_EVERY_SECS)),
        );
        let allowed = (0..20)
            .filter(|_| rates.allow(a, limits.0, limits.1, limits.2, start))
            .count();
        assert_eq!(allowed, ENROL_BURST as usize);
        let later = start + Duration::from_secs_f64(ENROL_EVERY_SECS);
        assert!(rates.allow(a, limits.0, limits.1, limits.2, later));
        // Many addresses share one allowance over all of them.
        let mut others = 0;
        for i in 0..50u8 {
            let ip = IpAddr::from([198, 51, 100, i]);
            if rates.allow(ip, limits.0, limits.1, limits.2, later) {
                others += 1;
            }
        }
        assert!(others < ENROL_ALL_BURST as usize, "{others}");
    }

    #[test]
    fn hex_inputs_are_checked() {
        assert!(unhex::<2>("0aff", "x").is_ok());
        assert!(unhex::<2>("0af", "x").is_err());
        assert!(unhex::<2>("zzzz", "x").is_err());
        assert!(unhex::<2>("éé", "x").is_err());
    }
}
