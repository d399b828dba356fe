//! The status page against hostile text (issue 5, item 8).
//!
//! More than a hundred XSS payloads go into every text field an alert, an alert update and
//! a mirror offer carry (and into member names where they fit). Both views are checked:
//! the public one shows every payload of alerts and offers and none of the member names
//! (it lists no members); the admin one (through its token) shows them all. Each payload, should it ever
//! run or navigate, requests a beacon URL on a listener this test runs on loopback; the URL
//! names the payload and the field. Then:
//!
//! - every response is fetched over plain HTTP: CSP, `nosniff`, a charset, no `<script`,
//!   no element or attribute the page does not use, no `on…=` handler attribute, and every
//!   payload shown verbatim as text;
//! - every page is loaded in headless Chromium (Debian's `chromium`, installed by `.ci/run`):
//!   zero beacon requests, the dumped DOM is still our page and holds no element or
//!   attribute from the payloads. A control page serving the same payloads without escaping
//!   or CSP proves that the payloads and the beacon do fire, and the markup check must flag
//!   the payloads themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use solidarity_control::request;
use solidarity_proto::payload::{
    Alert, AlertCategory, AlertStatus, LegalType, MAX_DETAILS_BYTES, MAX_NAME_BYTES,
    MAX_NOTE_BYTES, MAX_SHORT_TEXT_BYTES, MAX_SUBJECT_BYTES, MAX_SUMMARY_BYTES, MirrorOffer,
    MirrorService, Seized, Severity,
};
use solidarity_proto::{AuthorKey, MessageId};
use solidarity_tests::{TestNode, eventually, http_get_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one Chromium run may take before the test kills it and fails.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent control calls while filling the node (the server takes 16 connections).
const CONCURRENT_CALLS: usize = 8;

/// Fixed payloads; `{B}` is replaced by the beacon URL of the payload and field. All fit in
/// the shortest field they go into (the 200-byte summary) with the URL.
const TEMPLATES: &[&str] = &[
    // Script elements, and ways out of the elements around the text.
    "<script>fetch('{B}')</script>",
    "<script src={B}></script>",
    "<SCRIPT>new Image().src='{B}'</SCRIPT>",
    "<script>location='{B}'</script>",
    "<script>document.location.href='{B}'</script>",
    "</pre><script>fetch('{B}')</script>",
    "</dd></dl><script>fetch('{B}')</script>",
    "</li></ul></dd><script>fetch('{B}')</script>",
    "</h3></article><script>fetch('{B}')</script>",
    "</td></tr></table><script>fetch('{B}')</script>",
    "</title><script>fetch('{B}')</script>",
    "</textarea><script>fetch('{B}')</script>",
    "</style><script>fetch('{B}')</script>",
    "</noscript><script>fetch('{B}')</script>",
    "<!--<script>--><script>fetch('{B}')</script>",
    "<scr<script>ipt>fetch('{B}')</scr</script>ipt>",
    "<script type=module>import('{B}')</script>",
    "<script>/*</script><script>*/fetch('{B}')</script>",
    "\"><script>fetch('{B}')</script>",
    "'><script>fetch('{B}')</script>",
    "<script type=\"text/javascript\">fetch('{B}')</script>",
    "<script>setTimeout(\"fetch('{B}')\",1)</script>",
    "<script>navigator.sendBeacon('{B}')</script>",
    "<script>window.open('{B}')</script>",
    "<noscript><p title=\"</noscript><img src=x onerror=fetch('{B}')>\">",
    "<svg><script>fetch('{B}')</script></svg>",
    "<svg><script href={B} /></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=fetch('{B}')>",
    "<template><script>fetch('{B}')</script></template><script>fetch('{B}')</script>",
    "<xmp><script>fetch('{B}')</script></xmp>",
    // Event handlers.
    "<img src=x onerror=fetch('{B}')>",
    "<img src=x onerror=\"fetch('{B}')\">",
    "<IMG SRC=x ONERROR=fetch('{B}')>",
    "<img/src=x/onerror=fetch('{B}')>",
    "<img src={B}>",
    "<img srcset={B}>",
    "<picture><source srcset={B}><img src=x></picture>",
    "<body onload=fetch('{B}')>",
    "<body onpageshow=fetch('{B}')>",
    "<svg onload=fetch('{B}')>",
    "<svg/onload=fetch('{B}')>",
    "<input autofocus onfocus=fetch('{B}')>",
    "<details open ontoggle=fetch('{B}')>",
    "<video><source onerror=fetch('{B}')></video>",
    "<audio src=x onerror=fetch('{B}')>",
    "<video poster={B}>",
    "<marquee onstart=fetch('{B}')>x</marquee>",
    "<div onmouseover=fetch('{B}')>x</div>",
    "<iframe onload=fetch('{B}')>",
    "<object data={B}>",
    "<embed src={B}>",
    "<select autofocus onfocus=fetch('{B}')>",
    "<textarea autofocus onfocus=fetch('{B}')>",
    "<keygen autofocus onfocus=fetch('{B}')>",
    "<img src=x onerror=&#102;etch('{B}')>",
    "<img src=x onerror=\\u0066etch('{B}')>",
    "<img src=x oNeRrOr=fetch('{B}')>",
    "<image src=x onerror=fetch('{B}')>",
    "<style onload=fetch('{B}')></style>",
    "<x contenteditable onfocus=fetch('{B}') autofocus>x</x>",
    "<frameset onload=fetch('{B}')>",
    "<link rel=stylesheet href={B}>",
    "<link rel=prefetch href={B}>",
    "<link rel=preload href={B} as=image>",
    "<link rel=icon href={B}>",
    // javascript: and data: URLs.
    "<a href=\"javascript:fetch('{B}')\">x</a>",
    "<a href=javascript:location='{B}'>x</a>",
    "<iframe src=\"javascript:fetch('{B}')\">",
    "<iframe src={B}>",
    "<iframe srcdoc=\"<script>fetch('{B}')</script>\">",
    "<iframe srcdoc=\"&lt;img src=x onerror=fetch('{B}')&gt;\">",
    "<form action={B}><input type=submit autofocus></form>",
    "<form action=\"javascript:fetch('{B}')\"><button autofocus>x</button></form>",
    "<form><button formaction={B}>x</button></form>",
    "<object data=\"javascript:fetch('{B}')\">",
    "<embed src=\"javascript:fetch('{B}')\">",
    "javascript:fetch('{B}')",
    "JaVaScRiPt:fetch('{B}')",
    " javascript:location='{B}'",
    "data:text/html,<script>fetch('{B}')</script>",
    "<a href=\"data:text/html,<script>fetch('{B}')</script>\">x</a>",
    "<math href=\"javascript:fetch('{B}')\">x</math>",
    "<svg><a href=\"javascript:fetch('{B}')\"><text y=9>x</text></a></svg>",
    "<a ping={B} href=#>x</a>",
    // SVG.
    "<svg><animate onbegin=fetch('{B}') attributeName=x dur=1s>",
    "<svg><set attributeName=href to=\"javascript:fetch('{B}')\">",
    "<svg><image href={B} />",
    "<svg><foreignObject><img src=x onerror=fetch('{B}')></foreignObject></svg>",
    "<svg><style>@import '{B}';</style></svg>",
    "<svg><use href=\"{B}#x\" /></svg>",
    "<svg><feImage href={B} /></svg>",
    // Meta, base, navigation.
    "<meta http-equiv=refresh content=\"0;url={B}\">",
    "<meta http-equiv=\"refresh\" content=\"0; URL='{B}'\">",
    "<meta http-equiv=Content-Security-Policy content=\"default-src *\"><img src={B}>",
    "<base href={B}>",
    "<meta charset=utf-7>+ADw-script+AD4-fetch('{B}')+ADw-/script+AD4-",
    "+ADw-img src=x onerror=fetch('{B}')+AD4-",
    "<portal src={B}>",
    "<meta http-equiv=Link content=\"<{B}>; rel=prefetch\">",
    // CSS.
    "<style>@import '{B}';</style>",
    "<style>body{background:url({B})}</style>",
    "<div style=\"background:url({B})\">x</div>",
    "<div style=\"background-image:url('{B}')\">x</div>",
    "</style><style>*{background:url({B})}</style>",
    "<link rel=stylesheet href=\"data:text/css,*{background:url({B})}\">",
    "<style>@font-face{font-family:x;src:url({B})}</style>",
    // Attribute break-outs.
    "\" onmouseover=\"fetch('{B}')\" x=\"",
    "' onfocus='fetch(`{B}`)' autofocus x='",
    "\" autofocus onfocus=fetch('{B}') x=\"",
    "` onerror=fetch('{B}') x=`",
    "\" style=\"background:url({B})",
    "\"/><img src=x onerror=fetch('{B}')>",
    // Broken markup.
    "<img src=\"x\" onerror=\"fetch('{B}')\"",
    "<img src=x onerror=fetch('{B}') <b>",
    "<img \"\"\"><script>fetch('{B}')</script>\">",
    "<<script>fetch('{B}');//<</script>",
    "<img src=`x` onerror=fetch('{B}')>",
    "<img\nsrc=x\nonerror=fetch('{B}')>",
    "<img src=x onerror=fetch('{B}')//\"",
    "<a href=\"{B}",
    "<!--><img src=x onerror=fetch('{B}')>-->",
    "<![CDATA[><img src=x onerror=fetch('{B}')>]]>",
    "<?xml-stylesheet href=\"{B}\"?>",
    "&lt;img src=x onerror=fetch('{B}')&gt;",
    "&#60;script&#62;fetch('{B}')&#60;/script&#62;",
    "%3Cscript%3Efetch('{B}')%3C/script%3E",
    "\u{FF1C}script\u{FF1E}fetch('{B}')\u{FF1C}/script\u{FF1E}",
    "<\u{0131}mg src=x onerror=fetch('{B}')>",
    "<img\u{200B} src=x onerror=fetch('{B}')>",
    "{{constructor.constructor('fetch(\"{B}\")')()}}",
    "${fetch('{B}')}",
    "\"},{\"x\":\"<img src=x onerror=fetch('{B}')>",
    "]]></content><content type=\"html\">&lt;img src=x onerror=fetch('{B}')&gt;",
    "</title><entry><title>x</title><content type=\"xhtml\"><script>fetch('{B}')</script>",
    // Bidirectional overrides and invisible characters.
    "\u{202E}<img src=x onerror=fetch('{B}')>\u{202C}",
    "\u{2066}<script>fetch('{B}')</script>\u{2069}",
    "\u{2067}<svg onload=fetch('{B}')>\u{2069}",
    "\u{202B}<img src=x onerror=fetch('{B}')>",
    "\u{200F}\u{202E}javascript:fetch('{B}')",
    "\u{2068}\" onmouseover=\"fetch('{B}')\u{2069}",
    "\u{202D}</pre><script>fetch('{B}')</script>",
    "\u{FEFF}<script>fetch('{B}')</script>",
    "\u{202E}<a href={B}>txt.exe</a>",
    "\u{202E}>)'{B}'(hctef=rorreno x=crs gmi<",
];

/// Payloads built at run time: encoded JavaScript and strings of each field's full length.
const GENERATED: usize = 9;

/// One payload for one field: `{B}` replaced, fitted to the field.
fn payload(index: usize, url: &str, max: usize, one_line: bool) -> Option<String> {
    let text = if let Some(template) = TEMPLATES.get(index) {
        template.replace("{B}", url)
    } else {
        generated(index - TEMPLATES.len(), url, max)?
    };
    let text = if one_line {
        text.replace(['\n', '\t'], " ")
    } else {
        text
    };
    // Format characters (bidi controls, zero-width) are refused before signing (SPEC §8.1;
    // `hostile_outsider.rs` tests that); the rest of each payload must still come through.
    let text: String = text
        .chars()
        .filter(|&c| !solidarity_proto::text::is_refused_everywhere(c))
        .collect();
    (text.len() <= max).then_some(text)
}

fn payload_count() -> usize {
    TEMPLATES.len() + GENERATED
}

/// `head` repeated, then `tail`, padded with `x` to exactly `max` bytes.
fn long(head: &str, tail: &str, max: usize) -> Option<String> {
    if tail.len() + head.len() > max {
        return None;
    }
    let mut text = String::with_capacity(max);
    while text.len() + head.len() + tail.len() <= max {
        text.push_str(head);
    }
    text.push_str(tail);
    while text.len() < max {
        text.push('x');
    }
    Some(text)
}

fn generated(which: usize, url: &str, max: usize) -> Option<String> {
    let call = format!("fetch('{url}')");
    match which {
        0 => {
            let codes: Vec<String> = call.chars().map(|c| (c as u32).to_string()).collect();
            Some(format!(
                "<script>eval(String.fromCharCode({}))</script>",
                codes.join(",")
            ))
        }
        1 => {
            let encoded: String = call.bytes().map(|b| format!("%{b:02X}")).collect();
            Some(format!(
                "<img src=x onerror=eval(decodeURIComponent('{encoded}'))>"
            ))
        }
        // Long strings: each field's maximum length.
        2 => long(&format!("<img src=x onerror=fetch('{url}')>"), "", max),
        3 => long("A", &format!("<script>{call}</script>"), max),
        4 => long("<div>", &format!("<svg onload={call}>"), max),
        5 => long("\"'", &format!("><script>{call}</script>"), max),
        6 => long("\u{202E}", &format!("<img src=x onerror={call}>"), max),
        7 => long("<!--", &format!("--><script>{call}</script>"), max),
        8 => long(
            "é",
            &format!("<iframe srcdoc=\"<script>{call}</script>\">"),
            max,
        ),
        _ => None,
    }
}

/// A text field of an alert, update or offer: short code (in the beacon URL), limit, shape.
struct Field {
    code: &'static str,
    max: usize,
    one_line: bool,
}

const SUBJECT: Field = Field {
    code: "sj",
    max: MAX_SUBJECT_BYTES,
    one_line: true,
};
const SUMMARY: Field = Field {
    code: "su",
    max: MAX_SUMMARY_BYTES,
    one_line: true,
};
const DETAILS: Field = Field {
    code: "de",
    max: MAX_DETAILS_BYTES,
    one_line: false,
};
const NOTE: Field = Field {
    code: "no",
    max: MAX_NOTE_BYTES,
    one_line: false,
};
const MEMBER_NAME: Field = Field {
    code: "mn",
    max: MAX_NAME_BYTES,
    one_line: true,
};

/// One-line fields of at most [`MAX_SHORT_TEXT_BYTES`].
fn short(code: &'static str) -> Field {
    Field {
        code,
        max: MAX_SHORT_TEXT_BYTES,
        one_line: true,
    }
}

/// Multi-line fields of at most [`MAX_NOTE_BYTES`].
fn note(code: &'static str) -> Field {
    Field {
        code,
        max: MAX_NOTE_BYTES,
        one_line: false,
    }
}

/// Every payload of one field kind, for the beacon at `base`.
struct Hostile {
    base: String,
}

impl Hostile {
    fn text(&self, index: usize, field: &Field) -> Option<String> {
        let url = format!("{}/{index}/{}", self.base, field.code);
        payload(index, &url, field.max, field.one_line)
    }

    /// Fields that must take every payload.
    fn must(&self, index: usize, field: &Field) -> String {
        self.text(index, field).unwrap_or_else(|| {
            panic!(
                "payload {index} does not fit field {} ({} bytes)",
                field.code, field.max
            )
        })
    }

    fn alert(&self, index: usize) -> Alert {
        Alert {
            category: AlertCategory::LegalRequest,
            legal_type: Some(LegalType::Subpoena),
            severity: Severity::Critical,
            subject: self.must(index, &SUBJECT),
            summary: self.must(index, &SUMMARY),
            details: Some(self.must(index, &DETAILS)),
            jurisdictions: vec!["FR".into()],
            authority: Some(self.must(index, &short("au"))),
            legal_basis: Some(self.must(index, &short("lb"))),
            event_date: Some("2026-11-28".into()),
            seized: Some(Seized::Unknown),
            services: vec![self.must(index, &short("sv"))],
            domains: vec![self.must(index, &short("do"))],
            upstream: Some(self.must(index, &short("up"))),
            references: vec![self.must(index, &short("rf"))],
        }
    }

    fn offer(&self, index: usize) -> MirrorOffer {
        MirrorOffer {
            services: vec![MirrorService::Web, MirrorService::Git],
            storage_bytes: Some(1 << 30),
            jurisdictions: vec!["DE".into()],
            upstream: Some(self.must(index, &short("ou"))),
            data_policy: Some(self.must(index, &note("dp"))),
            conditions: Some(self.must(index, &note("co"))),
            contact: self.must(index, &short("ct")),
        }
    }

    /// Every text a view must show for payload `index`, as text: the admin view also
    /// shows member names.
    fn shown(&self, index: usize, admin: bool) -> Vec<String> {
        let alert = self.alert(index);
        let offer = self.offer(index);
        let mut texts = vec![alert.subject, alert.summary];
        texts.extend(alert.details);
        texts.extend(alert.authority);
        texts.extend(alert.legal_basis);
        texts.extend(alert.services);
        texts.extend(alert.domains);
        texts.extend(alert.upstream);
        texts.extend(alert.references);
        texts.push(self.must(index, &NOTE));
        texts.extend(offer.upstream);
        texts.extend(offer.data_policy);
        texts.extend(offer.conditions);
        texts.push(offer.contact);
        if admin {
            texts.extend(self.text(index, &MEMBER_NAME));
        }
        texts
    }
}

/// Text fields each payload goes into: alert 9 (subject, summary, details, authority, legal
/// basis, services, domains, upstream, references), update note 1, offer 4 (upstream, data
/// policy, conditions, contact).
const FIELDS: usize = 14;

/// A loopback HTTP listener that records every request path. It serves the control page
/// at `/control` and answers anything else with a short `ok`.
struct Beacon {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    control_page: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Beacon {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind beacon");
        let port = listener.local_addr().expect("beacon address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let control_page = Arc::new(Mutex::new(String::new()));
        let (seen, page) = (requests.clone(), control_page.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (seen, page) = (seen.clone(), page.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
                            .await
                        {
                            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buffer[..n]),
                            _ => break,
                        }
                    }
                    let line = String::from_utf8_lossy(&request)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let path = line.split(' ').nth(1).unwrap_or("?").to_owned();
                    let body = if path == "/control" {
                        page.lock().expect("control page").clone()
                    } else {
                        "ok".to_owned()
                    };
                    seen.lock().expect("requests").push(path);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            port,
            requests,
            control_page,
            task,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Path of headless Chromium; fails the test when it is missing.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test needs headless Chromium, and neither `chromium` nor `chromium-browser` is \
         on PATH: run .ci/run (it installs it), or install Debian's package: \
         apt-get install --no-install-recommends chromium"
    );
}

/// Loads `url` in headless Chromium and returns the DOM after the page settled.
fn dump_dom(chromium: &std::path::Path, url: &str) -> (String, Duration) {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let log = profile.path().join("stderr.log");
    let start = Instant::now();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("chromium log"))
        .process_group(0)
        .spawn()
        .expect("start chromium");
    // Chromium and its helpers are alone in this process group, so the group id cannot be
    // reused while any of them lives: killing the group ends only what this test started.
    let group = child.id();
    let kill_group = || {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
    };
    let mut stdout = child.stdout.take().expect("chromium stdout");
    let (dom_tx, dom_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        let _ = dom_tx.send(dom);
    });
    // The DOM is complete once every process holding the pipe has closed it.
    let Ok(dom) = dom_rx.recv_timeout(CHROMIUM_TIMEOUT) else {
        kill_group();
        let _ = child.wait();
        panic!("chromium did not finish loading {url} within {CHROMIUM_TIMEOUT:?}");
    };
    let status = child.wait().expect("wait for chromium");
    let took = start.elapsed();
    assert!(
        status.success() && !dom.is_empty(),
        "chromium failed on {url}: {status}; its stderr:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    (dom, took)
}

/// One start tag: name and attributes, lower case names.
#[derive(Debug)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
}

/// The start tags of serialized HTML (the server's output or Chromium's DOM dump). Text is
/// escaped in both, so every `<` outside an attribute value starts markup.
fn elements(html: &str) -> Vec<Element> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_to = |from: usize, pattern: &str| {
        html[from..]
            .find(pattern)
            .map_or(bytes.len(), |at| from + at + pattern.len())
    };
    while let Some(at) = html[i..].find('<') {
        i += at;
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i = skip_to(i + 4, "-->");
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") || rest.starts_with("</") {
            i = skip_to(i + 1, ">");
            continue;
        }
        if !rest[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            i += 1;
            continue;
        }
        i += 1;
        let name_end = html[i..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map_or(bytes.len(), |end| i + end);
        let mut element = Element {
            name: html[i..name_end].to_ascii_lowercase(),
            attributes: Vec::new(),
        };
        i = name_end;
        loop {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'>' {
                i = (i + 1).min(bytes.len());
                break;
            }
            let name_end = html[i..]
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
                .map_or(bytes.len(), |end| i + end);
            let name = html[i..name_end].to_ascii_lowercase();
            i = name_end;
            let mut value = String::new();
            if i < bytes.len() && bytes[i] == b'=' {
                i += 1;
                if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                    let quote = bytes[i] as char;
                    let end = html[i + 1..]
                        .find(quote)
                        .map_or(bytes.len(), |end| i + 1 + end);
                    value = unescape(&html[i + 1..end]);
                    i = (end + 1).min(bytes.len());
                } else {
                    let end = html[i..]
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .map_or(bytes.len(), |end| i + end);
                    value = unescape(&html[i..end]);
                    i = end;
                }
            }
            element.attributes.push((name, value));
        }
        out.push(element);
    }
    out
}

/// Undoes the escaping of serialized HTML text and attribute values.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&nbsp;", "\u{A0}")
        .replace("&amp;", "&")
}

/// Elements and attributes the status page itself uses; anything else came from a payload.
const PAGE_ELEMENTS: &[&str] = &[
    "html", "head", "meta", "title", "link", "body", "header", "h1", "p", "strong", "code", "main",
    "section", "h2", "article", "h3", "span", "dl", "dt", "dd", "ul", "li", "pre", "ol", "table",
    "thead", "tbody", "tr", "th", "td", "footer", "a", "bdi", "time",
];
const PAGE_ATTRIBUTES: &[&str] = &[
    "lang",
    "charset",
    "name",
    "content",
    "rel",
    "href",
    "type",
    "title",
    "class",
    "id",
    "datetime",
    "data-label",
];
/// Elements a payload could bring, looked for in every page Chromium renders.
const HOSTILE_ELEMENTS: &[&str] = &[
    "script", "img", "image", "svg", "iframe", "object", "embed", "base", "form", "input",
    "button", "video", "audio", "source", "picture", "style", "math", "details", "marquee",
    "select", "textarea", "keygen", "frameset", "frame", "portal", "noscript", "template", "xmp",
    "x",
];

/// What is wrong with the markup of a page: elements or attributes it does not use, event
/// handlers, script URLs, a refresh.
fn markup_problems(elements: &[Element], strict: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for element in elements {
        let name = element.name.as_str();
        if (strict && !PAGE_ELEMENTS.contains(&name)) || HOSTILE_ELEMENTS.contains(&name) {
            problems.push(format!("element <{name}> {:?}", element.attributes));
        }
        for (attribute, value) in &element.attributes {
            let value = value.trim_start().to_ascii_lowercase();
            if attribute.starts_with("on")
                || (strict && !PAGE_ATTRIBUTES.contains(&attribute.as_str()))
                || attribute == "http-equiv"
                || attribute == "srcdoc"
                || value.starts_with("javascript:")
                || value.starts_with("data:")
                || (attribute == "style" && value.contains("url("))
                || (attribute == "href" && !value.starts_with('/'))
            {
                problems.push(format!("<{name} {attribute}={value:?}>"));
            }
        }
    }
    problems
}

fn headers(head: &str) -> BTreeMap<String, String> {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

/// Checks the CSP: scripts, frames, objects, forms and base URLs are all off, and no
/// source is more than `'self'`.
fn check_csp(url: &str, csp: &str) {
    let directives: BTreeMap<&str, Vec<&str>> = csp
        .split(';')
        .filter_map(|directive| {
            let mut words = directive.split_ascii_whitespace();
            words.next().map(|name| (name, words.collect()))
        })
        .collect();
    let none = ["'none'"];
    assert_eq!(
        directives.get("default-src").map(Vec::as_slice),
        Some(&none[..]),
        "{url}: CSP without default-src 'none': {csp}"
    );
    for directive in ["base-uri", "form-action", "frame-ancestors"] {
        assert_eq!(
            directives.get(directive).map(Vec::as_slice),
            Some(&none[..]),
            "{url}: CSP without {directive} 'none': {csp}"
        );
    }
    for directive in [
        "script-src",
        "script-src-elem",
        "script-src-attr",
        "object-src",
    ] {
        assert!(
            directives
                .get(directive)
                .is_none_or(|sources| sources.as_slice() == none),
            "{url}: CSP allows some {directive}: {csp}"
        );
    }
    for (directive, sources) in &directives {
        assert!(
            sources
                .iter()
                .all(|source| *source == "'none'" || *source == "'self'"),
            "{url}: CSP {directive} allows more than 'self': {csp}"
        );
    }
}

/// Raises one alert, its update and one offer per payload; adds members named by payloads.
async fn fill(node: &TestNode, hostile: &Arc<Hostile>) -> (usize, usize) {
    let count = payload_count();
    let mut messages = 0;
    let mut ids: Vec<MessageId> = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(CONCURRENT_CALLS) {
        let mut calls = tokio::task::JoinSet::new();
        for &index in chunk {
            let hostile = hostile.clone();
            let client = node.client();
            calls.spawn_blocking(move || {
                let alert = client
                    .sign(&request::AlertRaise {
                        alert: hostile.alert(index),
                        expires_in_ms: None,
                    })
                    .unwrap_or_else(|error| panic!("alert with payload {index}: {error}"));
                client
                    .sign(&request::MirrorOffer {
                        offer: hostile.offer(index),
                        valid_for_ms: 3_600_000,
                    })
                    .unwrap_or_else(|error| panic!("offer with payload {index}: {error}"));
                alert
            });
        }
        while let Some(id) = calls.join_next().await {
            ids.push(id.expect("raise"));
            messages += 2;
        }
    }
    // The updates need the alerts' ids; which payload goes with which alert does not matter.
    let numbered: Vec<(usize, MessageId)> = ids.into_iter().enumerate().collect();
    for chunk in numbered.chunks(CONCURRENT_CALLS) {
        let mut calls = tokio::task::JoinSet::new();
        for &(index, id) in chunk {
            let hostile = hostile.clone();
            let client = node.client();
            calls.spawn_blocking(move || {
                client
                    .sign(&request::AlertUpdate {
                        alert: id,
                        status: AlertStatus::Confirmed,
                        note: Some(hostile.must(index, &NOTE)),
                    })
                    .unwrap_or_else(|error| panic!("update of alert {id}: {error}"))
            });
        }
        while let Some(done) = calls.join_next().await {
            done.expect("update");
            messages += 1;
        }
    }
    let members: Vec<(String, String)> = (0..count)
        .filter_map(|index| {
            let name = hostile.text(index, &MEMBER_NAME)?;
            let key = ed25519_dalek::SigningKey::from_bytes(
                &[u8::try_from(index % 250).expect("small").wrapping_add(1); 32],
            );
            let key: AuthorKey = solidarity_proto::envelope::author_key(&key);
            Some((name, key.to_hex()))
        })
        .collect();
    let named = members.len();
    node.add_members(&members).await;
    eventually("every alert, update and offer on the page", || async {
        let alerts = node.alerts().await;
        let offers = node
            .call(|client| client.offers())
            .await
            .map_or(0, |offers| offers.len());
        alerts.len() == count
            && alerts
                .iter()
                .all(|alert| alert.status == AlertStatus::Confirmed)
            && offers == count
            && node.peers().await.len() >= named
    })
    .await;
    (messages, named)
}

/// Responses of the public view: path, and whether it is HTML. Every route of
/// `status_page/mod.rs` (only `/` is HTML) and the fallback with a hostile path.
const PAGES: &[(&str, bool)] = &[
    ("/", true),
    ("/alerts.atom", false),
    ("/api/v1/alerts", false),
    ("/api/v1/offers", false),
    ("/api/v1/status", false),
    ("/style.css", false),
    ("/%3Cscript%3Efetch(1)%3C/script%3E", false),
];

/// A node holding every payload in every field, and the beacon the payloads call.
struct Setup {
    node: TestNode,
    beacon: Beacon,
    hostile: Arc<Hostile>,
    /// The status page, without the trailing slash.
    base: String,
    /// The admin page, without the trailing slash.
    admin: String,
    /// The admin page's token.
    token: String,
}

/// One response to check: its URL (for Chromium: the admin login URL, which redirects to
/// the page), the headers to send over plain HTTP, whether it is HTML, whether it is the
/// admin view.
struct Page {
    path: String,
    url: String,
    browser_url: String,
    headers: Vec<(String, String)>,
    html: bool,
    admin: bool,
}

impl Setup {
    /// Every public response, then the admin page and its style sheet.
    fn pages(&self) -> Vec<Page> {
        let mut pages: Vec<Page> = PAGES
            .iter()
            .map(|&(path, html)| Page {
                path: path.to_owned(),
                url: format!("{}{path}", self.base),
                browser_url: format!("{}{path}", self.base),
                headers: Vec::new(),
                html,
                admin: false,
            })
            .collect();
        for (path, html) in [("/", true), ("/style.css", false)] {
            pages.push(Page {
                path: format!("admin {path}"),
                url: format!("{}{path}", self.admin),
                browser_url: format!("{}/login?token={}", self.admin, self.token),
                headers: vec![("Authorization".into(), format!("Bearer {}", self.token))],
                html,
                admin: true,
            });
        }
        pages
    }
}

async fn setup() -> Setup {
    let beacon = Beacon::start().await;
    let hostile = Arc::new(Hostile {
        base: format!("http://127.0.0.1:{}/h", beacon.port),
    });
    let count = payload_count();
    assert!(count >= 100, "only {count} payloads");
    let dir = tempfile::tempdir().expect("tempdir");
    solidarity_tests::init_data_dir_with(dir.path(), &[("admin_addr", "\"127.0.0.1:0\"")]);
    let node = TestNode::start(dir).await;
    let started = Instant::now();
    let (messages, named) = fill(&node, &hostile).await;
    let status = node.call(|client| client.status()).await.expect("status");
    let base = status.status_url.trim_end_matches('/').to_owned();
    let admin = status
        .admin_url
        .expect("admin page")
        .trim_end_matches('/')
        .to_owned();
    let token =
        solidarity::daemon::status_page::auth::read_token(node.dir.path()).expect("admin token");
    println!(
        "payloads: {count} ({} fixed, {GENERATED} generated of which 7 fill each field to its \
         maximum), each in {FIELDS} text fields, {named} also as member names; {messages} \
         messages signed in {:?}",
        TEMPLATES.len(),
        started.elapsed()
    );
    Setup {
        node,
        beacon,
        hostile,
        base,
        admin,
        token,
    }
}

/// Member names (payloads) that the public view `text` holds: it lists no members.
fn member_names_shown(text: &str, hostile: &Hostile) -> usize {
    (0..payload_count())
        .filter_map(|index| hostile.text(index, &MEMBER_NAME))
        .filter(|name| text.contains(name.as_str()))
        .count()
}

/// Payloads (index and text) of any field that `text` does not hold verbatim.
fn not_shown(text: &str, hostile: &Hostile, admin: bool) -> Vec<String> {
    (0..payload_count())
        .flat_map(|index| {
            hostile
                .shown(index, admin)
                .into_iter()
                .filter(|shown| !text.contains(shown.as_str()))
                .map(move |shown| format!("payload {index}: {shown:?}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_csp_nosniff_and_a_charset_and_no_script() {
    let setup = setup().await;
    let hostile = setup.hostile.clone();
    let mut html_pages = 0;
    for page in setup.pages() {
        let (url, path, html) = (page.url.clone(), page.path.clone(), page.html);
        let (head, body) = {
            let (url, headers) = (url.clone(), page.headers.clone());
            tokio::task::spawn_blocking(move || {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                http_get_with(&url, &headers)
            })
            .await
            .expect("http")
        };
        let headers = headers(&head);
        let csp = headers
            .get("content-security-policy")
            .map_or("", String::as_str);
        check_csp(&url, csp);
        assert_eq!(
            headers.get("x-content-type-options").map(String::as_str),
            Some("nosniff"),
            "{url}: no nosniff: {head}"
        );
        let content_type = headers
            .get("content-type")
            .map(|value| value.to_ascii_lowercase())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            // JSON is UTF-8 by definition and has no charset parameter (RFC 8259).
            assert!(
                content_type.contains("charset=utf-8"),
                "{url}: no charset: {content_type}"
            );
        }
        assert_eq!(
            content_type.starts_with("text/html"),
            html,
            "{url}: unexpected content type {content_type}"
        );
        let mut markup = String::new();
        if html {
            html_pages += 1;
            assert!(
                !body.to_ascii_lowercase().contains("<script"),
                "{url}: a <script in the page"
            );
            let found = elements(&body);
            let problems = markup_problems(&found, true);
            assert!(
                problems.is_empty(),
                "{url}: markup the page does not use ({}): {:?}",
                problems.len(),
                &problems[..problems.len().min(10)]
            );
            let missing = not_shown(&unescape(&body), &hostile, page.admin);
            assert!(
                missing.is_empty(),
                "{url}: {} payload texts not shown as text, e.g. {:?}",
                missing.len(),
                missing.first()
            );
            if !page.admin {
                assert_eq!(
                    member_names_shown(&unescape(&body), &hostile),
                    0,
                    "{url}: the public view names members"
                );
            }
            markup = format!(
                ", {} elements, all of the page's own kinds, no handler attribute, every payload shown as text",
                found.len()
            );
        }
        println!(
            "{path}: {} bytes, {content_type}, CSP {csp:?}, nosniff{markup}",
            body.len()
        );
    }
    assert_eq!(html_pages, 2, "each view has one HTML page");
    assert!(
        setup.beacon.requests().is_empty(),
        "plain HTTP reached the beacon"
    );
    setup.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_neither_runs_nor_navigates_in_chromium() {
    let chromium = chromium();
    let setup = setup().await;
    let (beacon, hostile) = (&setup.beacon, setup.hostile.clone());
    let count = payload_count();

    let mut loaded = 0;
    let mut chromium_time = Duration::ZERO;
    let mut problems = Vec::new();
    for page in setup.pages() {
        if page.path.ends_with("/style.css") {
            continue;
        }
        let (path, html) = (page.path.clone(), page.html);
        let url = page.browser_url.clone();
        let (dom, took) = {
            let (chromium, url) = (chromium.clone(), url.clone());
            tokio::task::spawn_blocking(move || dump_dom(&chromium, &url))
                .await
                .expect("chromium")
        };
        loaded += 1;
        chromium_time += took;
        let found = elements(&dom);
        let page_problems = markup_problems(&found, html);
        println!(
            "{path} in Chromium: {took:?}, {} bytes of DOM, {} elements, {} from payloads",
            dom.len(),
            found.len(),
            page_problems.len()
        );
        problems.extend(
            page_problems
                .into_iter()
                .map(|problem| format!("{path}: {problem}")),
        );
        if html {
            let title = if page.admin {
                "solidarity admin"
            } else {
                "solidarity"
            };
            if !(dom.contains(&format!("<title>{title} · test-federation</title>"))
                && dom.contains(&format!("<h1>{title}</h1>")))
            {
                problems.push(format!("{path}: no longer the status page"));
            }
            let cards = |class: &dyn Fn(&str) -> bool| {
                found
                    .iter()
                    .filter(|element| {
                        element.name == "article"
                            && element
                                .attributes
                                .iter()
                                .any(|(name, value)| name == "class" && class(value))
                    })
                    .count()
            };
            let alerts = cards(&|class| class.starts_with("alert "));
            let offers = cards(&|class| class == "offer");
            if (alerts, offers) != (count, count) {
                problems.push(format!(
                    "{path}: {alerts} alert and {offers} offer cards, not {count} of each"
                ));
            }
            if !page.admin && member_names_shown(&unescape(&dom), &hostile) > 0 {
                problems.push(format!("{path}: the public view names members"));
            }
            let missing = not_shown(&unescape(&dom), &hostile, page.admin);
            if !missing.is_empty() {
                problems.push(format!(
                    "{path}: {} payload texts not shown as text, e.g. {:?}",
                    missing.len(),
                    missing.first()
                ));
            }
        }
    }
    let hits = beacon.requests();
    println!(
        "pages loaded in Chromium: {loaded}; beacon hits: {}; problems (elements or \
         attributes from payloads, payloads not shown as text): {}; chromium time: \
         {chromium_time:?}",
        hits.len(),
        problems.len()
    );
    assert!(
        hits.is_empty(),
        "payloads ran or navigated ({} beacon requests): {:?}",
        hits.len(),
        &hits[..hits.len().min(20)]
    );
    assert!(
        problems.is_empty(),
        "Chromium's DOM is not the page with the payloads as text ({} problems): {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );

    // Controls, or the zeros above prove nothing. 1. The markup check flags the payloads
    // themselves when they are not escaped.
    let control = Hostile {
        base: format!("http://127.0.0.1:{}/c", beacon.port),
    };
    let flagged = (0..count)
        .filter(|&index| {
            !markup_problems(&elements(&control.must(index, &SUMMARY)), true).is_empty()
        })
        .count();
    // 2. The same payloads, each in its own frame, with neither escaping nor CSP: the
    // beacon must hear from many of them.
    let mut page = String::from("<!doctype html><meta charset=utf-8><title>control</title>\n");
    for index in 0..count {
        let text = control.must(index, &SUMMARY);
        page.push_str(&format!(
            "<iframe srcdoc=\"{}\"></iframe>\n",
            text.replace('&', "&amp;").replace('"', "&quot;")
        ));
    }
    *beacon.control_page.lock().expect("control page") = page;
    let url = format!("http://127.0.0.1:{}/control", beacon.port);
    let (_, took) = tokio::task::spawn_blocking(move || dump_dom(&chromium, &url))
        .await
        .expect("chromium");
    let fired: BTreeSet<usize> = beacon
        .requests()
        .iter()
        .filter_map(|path| path.strip_prefix("/c/")?.split('/').next()?.parse().ok())
        .collect();
    println!(
        "controls: the markup check flags {flagged} of {count} payloads unescaped; on a page \
         without escaping or CSP {} of {count} payloads fired in Chromium ({took:?})",
        fired.len()
    );
    assert!(
        flagged >= count * 3 / 4,
        "the markup check flags only {flagged} of {count} unescaped payloads"
    );
    assert!(
        fired.len() >= count / 2,
        "only {} of {count} payloads fired on the control page: the beacon or the payloads do not work",
        fired.len()
    );

    setup.node.stop().await;
}
