//! The web page over plain HTTP (no browser): escaping of peers' text, security headers,
//! read-only mode, languages, search, files, live updates and what the page must never serve.
//!
//! Each test runs the real binary: `hedgerow serve --no-mdns --web 127.0.0.1:0` on a home the
//! CLI filled, and reads the answers byte for byte with a minimal HTTP/1.1 client.

use hedgerow_tests::web::{http, EventStream, WebNode};
use hedgerow_tests::{id, TestHome};

/// What the fixture commons holds.
struct Fixture {
    commons: String,
    design: String,
    event: String,
}

/// A commons with a design (BOM, steps, tags, a release), an event and two notes on it.
fn fixture(home: &TestHome) -> Fixture {
    let commons = id(&home.json(&["commons", "create", "Atelier"]));
    let design = id(&home.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=Crimps a cover crop flat",
        "--set",
        "stage=prototype",
        "--set",
        "licence.hardware=CERN-OHL-S-2.0",
        "--tag",
        "no-till",
        "--bom-line",
        "steel tube 406 mm;1;pcs;scrap yard",
        "--step",
        "Cut the tube to 1.6 m",
        "--step",
        "Weld twelve chevron blades around the drum",
    ]));
    home.ok(&["design", "release", &design, "--version", "1.0"]);
    let event = id(&home.json(&[
        "event",
        "new",
        "Build day",
        "--set",
        "start=2026-03-14",
        "--set",
        "location.name=Ferme des Chênes",
    ]));
    home.ok(&[
        "note",
        "add",
        "--on",
        &event,
        "--kind",
        "build-log",
        "--text",
        "Built two drums",
    ]);
    Fixture {
        commons,
        design,
        event,
    }
}

fn started() -> (WebNode, Fixture) {
    let home = TestHome::init("Ada Farmer");
    let fixture = fixture(&home);
    (WebNode::start(home, false), fixture)
}

#[test]
fn pages_render_the_commons_and_carry_the_security_headers() {
    let (node, f) = started();
    let home = node.get("/");
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.text().contains("Atelier"));
    let design = node.get(&format!("/c/{}/d/{}", f.commons, f.design));
    assert_eq!(design.status, 200, "{}", design.text());
    let page = design.text();
    for expected in [
        "Roller crimper",
        "steel tube 406 mm",
        "Weld twelve chevron blades around the drum",
        "CERN-OHL-S-2.0",
        "no-till",
        "<option value=\"1.0\"",
        &format!("data-live=\"/live/{}\"", f.design),
    ] {
        assert!(
            page.contains(expected),
            "design page lacks {expected}:\n{page}"
        );
    }
    for path in [
        "/".to_string(),
        format!("/c/{}", f.commons),
        format!("/c/{}/d/{}", f.commons, f.design),
        format!("/c/{}/d/{}?v=1.0", f.commons, f.design),
        format!("/c/{}/d/{}/history", f.commons, f.design),
        format!("/c/{}/d/{}/blame/steps", f.commons, f.design),
        format!("/c/{}/events", f.commons),
        format!("/c/{}/e/{}", f.commons, f.event),
        format!("/c/{}/people", f.commons),
        "/assets/app.css".to_string(),
        "/assets/app.js".to_string(),
        "/no/such/page".to_string(),
    ] {
        let answer = node.get(&path);
        let csp = answer.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("default-src 'self'"), "{path}: CSP {csp:?}");
        assert!(
            csp.contains("frame-ancestors 'none'"),
            "{path}: CSP {csp:?}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: CSP {csp:?}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            answer.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        if path != "/no/such/page" {
            assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        } else {
            assert_eq!(answer.status, 404);
        }
        if answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
        {
            let text = answer.text();
            // No inline script: every <script> names a file of this node.
            for (i, _) in text.match_indices("<script") {
                let tag = &text[i..text[i..].find('>').map_or(text.len(), |e| i + e)];
                assert!(
                    tag.contains("src=\"/assets/"),
                    "{path}: inline script {tag}"
                );
            }
            assert!(!text.contains(" style="), "{path}: inline style");
            assert!(
                answer.body.len() < 100 * 1024,
                "{path}: {} bytes",
                answer.body.len()
            );
        }
    }
    // The release shows what was released, not live.
    let release = node
        .get(&format!("/c/{}/d/{}?v=1.0", f.commons, f.design))
        .text();
    assert!(release.contains("1.0</strong>"), "{release}");
    assert!(!release.contains("data-live="), "a release does not change");
}

#[test]
fn peers_text_is_escaped_everywhere() {
    let home = TestHome::init("<b>Mallory</b>");
    let commons = id(&home.json(&["commons", "create", "<script>alert('commons')</script>"]));
    let design = id(&home.json(&[
        "design",
        "new",
        "<img src=x onerror=alert(1)>",
        "--set",
        "summary=</p><script>alert('summary')</script>",
        "--tag",
        "\"><script>alert(2)</script>",
        "--step",
        "<iframe src=//evil.example></iframe>",
    ]));
    let hostile = "<script>document.title='pwned'</script><a href=\"javascript:alert(3)\">x</a>";
    home.ok(&["note", "add", "--on", &design, "--text", hostile]);
    // A huge note: the page shows its beginning and stays small.
    let huge = "<b>bold?</b> ".repeat(15_000);
    let huge_file = home.path().join("huge-note.txt");
    std::fs::write(&huge_file, &huge).expect("write the huge note");
    let out = home.run(&[
        "note",
        "add",
        "--on",
        &design,
        "--file",
        huge_file.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = WebNode::start(home, false);
    for path in [
        "/".to_string(),
        format!("/c/{commons}"),
        format!("/c/{commons}/d/{design}"),
        format!("/c/{commons}/people"),
        format!("/c/{commons}/d/{design}/blame/steps"),
        format!("/c/{commons}/d/{design}/history"),
    ] {
        let answer = node.get(&path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        let text = answer.text();
        for raw in [
            "<script>alert",
            "<img src=x",
            "<iframe",
            "<b>Mallory",
            "<b>bold",
            "href=\"javascript:",
        ] {
            assert!(!text.contains(raw), "{path} carries raw {raw}");
        }
        assert!(
            answer.body.len() < 100 * 1024,
            "{path}: {} bytes",
            answer.body.len()
        );
    }
    let page = node.get(&format!("/c/{commons}/d/{design}")).text();
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;document.title="),
        "the note is shown, escaped"
    );
    assert!(
        page.contains("&lt;b&gt;bold?&lt;/b&gt;"),
        "the huge note's beginning is shown"
    );
}

#[test]
fn a_read_only_node_refuses_every_write() {
    let home = TestHome::init("Ada Farmer");
    let f = fixture(&home);
    let node = WebNode::start(home, true);
    assert_eq!(node.get("/").status, 200, "reading works");
    for (method, path) in [
        ("POST", "/".to_string()),
        ("POST", format!("/c/{}/e/{}", f.commons, f.event)),
        ("PUT", format!("/c/{}/d/{}", f.commons, f.design)),
        ("DELETE", format!("/c/{}/d/{}", f.commons, f.design)),
        ("POST", "/api/notes".to_string()),
    ] {
        let answer = http(
            node.addr,
            method,
            &path,
            &[("Content-Type", "application/json")],
            b"{}",
        );
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text());
        assert!(answer.text().contains("read-only"), "{}", answer.text());
    }
    // And nothing was written.
    let notes = node.json(&["note", "list", "--on", &f.event]);
    assert_eq!(notes.as_array().map(Vec::len), Some(1));
}

#[test]
fn writes_from_another_site_are_refused_and_bodies_are_limited() {
    let (node, _) = started();
    let cross = http(
        node.addr,
        "POST",
        "/",
        &[
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        b"",
    );
    assert_eq!(cross.status, 403, "{}", cross.text());
    let long = format!("/c/{}", "a".repeat(3000));
    assert_eq!(node.get(&long).status, 414);
}

#[test]
fn the_page_speaks_the_browsers_language() {
    let (node, f) = started();
    let path = format!("/c/{}/d/{}", f.commons, f.design);
    let fr = http(
        node.addr,
        "GET",
        &path,
        &[("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.5")],
        b"",
    );
    let text = fr.text();
    assert!(text.contains("<html lang=\"fr\""), "{text}");
    assert!(text.contains("Étapes de fabrication"), "{text}");
    assert!(text.contains("Liste des matériaux"));
    assert_eq!(fr.header("vary"), Some("Accept-Language"));
    let en = http(
        node.addr,
        "GET",
        &path,
        &[("Accept-Language", "en-GB,en;q=0.9")],
        b"",
    )
    .text();
    assert!(en.contains("<html lang=\"en\""));
    assert!(en.contains("Build steps"));
    let other = http(node.addr, "GET", &path, &[("Accept-Language", "de")], b"").text();
    assert!(other.contains("Build steps"), "English when none is spoken");
}

#[test]
fn search_and_filters_narrow_the_design_list() {
    let home = TestHome::init("Ada Farmer");
    let f = fixture(&home);
    home.ok(&[
        "design",
        "new",
        "Seed drill",
        "--set",
        "stage=idea",
        "--tag",
        "seeding",
        "--step",
        "Bend the tines",
    ]);
    let node = WebNode::start(home, false);
    let list = |query: &str| node.get(&format!("/c/{}{query}", f.commons));
    let all = list("").text();
    assert!(all.contains("Roller crimper") && all.contains("Seed drill"));
    let found = list("?q=CHEVRON").text();
    assert!(
        found.contains("Roller crimper") && !found.contains("Seed drill"),
        "{found}"
    );
    assert!(
        found.contains("steps.2"),
        "says where the text was found: {found}"
    );
    let staged = list("?stage=idea").text();
    assert!(staged.contains("Seed drill") && !staged.contains("Roller crimper"));
    let tagged = list("?tag=no-till").text();
    assert!(tagged.contains("Roller crimper") && !tagged.contains("Seed drill"));
    let bad = list("?stage=finished");
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn no_address_serves_keys_config_or_files_of_the_home() {
    let (node, f) = started();
    let secret = std::fs::read(node.home.path().join("device.key")).expect("device key");
    let secret_hex = hex_text(&secret);
    for path in [
        "/device.key",
        "/network.key",
        "/config.json",
        "/profile.json",
        "/store",
        "/../device.key",
        "/assets/../device.key",
        "/%2e%2e/device.key",
        "/control.sock",
        "/status",
        "/api/status",
    ] {
        let answer = node.get(path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(!answer
            .body
            .windows(secret.len().min(32))
            .any(|w| secret.starts_with(w)));
        assert!(!answer.text().contains(&secret_hex));
    }
    // A file hash that no document names opens nothing.
    let fake = "0".repeat(64);
    let answer = node.get(&format!("/c/{}/d/{}/files/{fake}", f.commons, f.design));
    assert_eq!(answer.status, 404);
    // A loopback listener answers only to loopback names: another site cannot rebind to it.
    let rebound = http(node.addr, "GET", "/", &[("Host", "evil.example")], b"");
    assert_eq!(rebound.status, 421, "{}", rebound.text());
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn attached_files_are_sent_and_photos_shown_in_their_step() {
    let home = TestHome::init("Ada Farmer");
    let f = fixture(&home);
    let dir = tempfile::tempdir().expect("dir");
    // A 1x1 PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0xf8, 0x0f, 0, 0x01, 0x04, 0x01, 0, 0x5f,
        0x34, 0x6c, 0x1d, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let photo = dir.path().join("drum.png");
    std::fs::write(&photo, png).expect("png");
    let page = dir.path().join("plan.html");
    std::fs::write(&page, "<script>alert(1)</script>").expect("html");
    let attached = home.json(&[
        "design",
        "attach",
        &f.design,
        photo.to_str().expect("path"),
        "--role",
        "photo",
        "--step",
        "2",
        "--caption",
        "The drum <welded>",
    ]);
    let photo_hash = attached["hash"].as_str().expect("hash").to_string();
    let attached = home.json(&[
        "design",
        "attach",
        &f.design,
        page.to_str().expect("path"),
        "--role",
        "plan",
    ]);
    let page_hash = attached["hash"].as_str().expect("hash").to_string();
    let node = WebNode::start(home, false);
    let design = node.get(&format!("/c/{}/d/{}", f.commons, f.design)).text();
    let src = format!("/c/{}/d/{}/files/{photo_hash}", f.commons, f.design);
    assert!(design.contains(&format!("src=\"{src}\"")), "{design}");
    assert!(
        design.contains("alt=\"The drum &lt;welded&gt;\""),
        "{design}"
    );
    let image = node.get(&src);
    assert_eq!(image.status, 200);
    assert_eq!(image.body, png);
    assert_eq!(image.header("content-type"), Some("image/png"));
    let html = node.get(&format!(
        "/c/{}/d/{}/files/{page_hash}",
        f.commons, f.design
    ));
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(html
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment")));
}

#[test]
fn a_live_stream_says_change_when_the_cli_edits_or_notes() {
    let (node, f) = started();
    let mut design_stream = EventStream::open(node.addr, &format!("/live/{}", f.design));
    let mut event_stream = EventStream::open(node.addr, &format!("/live/{}", f.event));
    node.ok(&[
        "design",
        "edit",
        &f.design,
        "--set",
        "summary=Crimps rye flat",
    ]);
    assert_eq!(
        design_stream.next_named("change").as_deref(),
        Some(f.design.as_str())
    );
    let note = id(&node.json(&[
        "note",
        "add",
        "--on",
        &f.event,
        "--text",
        "Second drum done",
    ]));
    assert_eq!(
        event_stream.next_named("change").as_deref(),
        Some(note.as_str())
    );
    let page = node.get(&format!("/c/{}/e/{}", f.commons, f.event)).text();
    assert!(page.contains("Second drum done"));
}

fn encoded(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

#[test]
fn step_photos_are_served_resized_for_the_screen_and_hostile_images_as_they_came() {
    let home = TestHome::init("Ada Farmer");
    let f = fixture(&home);
    let dir = tempfile::tempdir().expect("dir");
    let photo = image::RgbImage::from_fn(2000, 1500, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 60])
    });
    let photo_bytes = encoded(photo.into(), image::ImageFormat::Jpeg);
    let drawing = image::RgbaImage::from_fn(1200, 400, |x, _| {
        image::Rgba([0, 0, 0, if x % 10 == 0 { 255 } else { 0 }])
    });
    let drawing_bytes = encoded(drawing.into(), image::ImageFormat::Png);
    // Says PNG, is not an image: sent as it came, never decoded twice.
    let hostile_bytes = b"\x89PNG\r\n\x1a\n<svg onload=alert(1)>".to_vec();
    let mut hashes = Vec::new();
    for (name, bytes, step) in [
        ("drum.jpg", &photo_bytes, "1"),
        ("plan.png", &drawing_bytes, "2"),
        ("odd.png", &hostile_bytes, "2"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let attached = home.json(&[
            "design",
            "attach",
            &f.design,
            path.to_str().expect("path"),
            "--role",
            "photo",
            "--step",
            step,
        ]);
        hashes.push(attached["hash"].as_str().expect("hash").to_string());
    }
    let node = WebNode::start(home, false);
    let base = format!("/c/{}/d/{}/files", f.commons, f.design);
    let page = node.get(&format!("/c/{}/d/{}", f.commons, f.design)).text();
    let photo = format!("{base}/{}", hashes[0]);
    assert!(
        page.contains(&format!(
            "srcset=\"{photo}?w=480 480w, {photo}?w=960 960w\""
        )),
        "{page}"
    );
    assert!(page.contains("sizes=\""), "{page}");
    for (hash, width, height, media) in [
        (&hashes[0], 480, 360, "image/jpeg"),
        (&hashes[0], 960, 720, "image/jpeg"),
        (&hashes[1], 480, 160, "image/png"),
    ] {
        for _ in 0..2 {
            let got = node.get(&format!("{base}/{hash}?w={width}"));
            assert_eq!(got.status, 200, "{}", got.text());
            assert_eq!(got.header("content-type"), Some(media));
            let image = image::load_from_memory(&got.body).expect("an image");
            assert_eq!((image.width(), image.height()), (width, height));
        }
    }
    // Kept under the home, made once.
    let cache = node.home.path().join("web-images");
    let kept = std::fs::read_dir(&cache).expect("cache dir").count();
    assert_eq!(kept, 3, "{cache:?}");
    let small = node.get(&format!("{base}/{}?w=480", hashes[0]));
    assert!(
        small.body.len() * 4 < photo_bytes.len(),
        "{}",
        small.body.len()
    );
    // Not an image: the bytes as they came, under their declared type; a marker remembers.
    let odd = node.get(&format!("{base}/{}?w=480", hashes[2]));
    assert_eq!(odd.status, 200);
    assert_eq!(odd.body, hostile_bytes);
    assert!(cache.join(format!("{}-480.original", hashes[2])).is_file());
    // Only the widths offered.
    let other = node.get(&format!("{base}/{}?w=4000", hashes[0]));
    assert_eq!(other.status, 400, "{}", other.text());
}
