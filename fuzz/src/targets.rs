//! The targets. Besides "does not panic", each checks what its decoder
//! promises: what decodes re-encodes to the same thing, and a decoded value
//! means the same to the code that uses it next.

use std::ffi::OsString;
use std::io::Cursor;
use std::os::unix::ffi::OsStringExt;

use deadbolt_config::Config;
use deadbolt_core::handoff::FrameError;
use deadbolt_core::handoff::{decode_answer, decode_request, encode_answer, encode_request};
use deadbolt_core::lockout::{LockoutPolicy, UnlockAfter};
use deadbolt_core::store::{decode, STATE_HEADER};
use deadbolt_core::{Timestamp, UserState};
use deadbolt_ldap_sync::encoding;
use deadbolt_pwcheck::protocol::{parse_args, read_password, Command};
use deadbolt_pwcheck::{check, CheckRequest, CheckVerdict, MAX_PASSWORD_BYTES};
use deadboltctl::template::{Fields, Template};

use crate::Target;

/// Every target, in the order `make fuzz` runs them.
pub const ALL: &[Target] = &[
    Target {
        name: "config",
        run: config,
        cases: 10000,
        dictionary: &[
            b"[lockout]\n",
            b"[password]\n",
            b"[state]\n",
            b"[directory]\n",
            b"[mail]\n",
            b"[[policy]]\n",
            b"deny = ",
            b"unlock_after = \"never\"\n",
            b"fail_interval = \"15m\"\n",
            b"group = \"staff\"\n",
            b"dir = \"/var/lib/deadbolt\"\n",
            b"18446744073709551616",
            b"-1",
            b"\"\\u0000\"",
            b"'''",
        ],
    },
    Target {
        name: "state",
        run: state,
        cases: 20000,
        dictionary: &[
            b"deadbolt-state 1\n",
            b"{\"failures\":[",
            b"{\"time\":1000000,\"host\":\"web1\",\"source\":\"tty1\",\"service\":\"sshd\",\"pid\":1}",
            b"\"last_reactivation\":",
            b"\"last_success\":",
            b"\"last_disable\":",
            b"\"last_enable\":",
            b"\"password_history\":[{\"changed_at\":5,\"phc\":\"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\"}]",
            b"\"expires_on\":{\"set_at\":1,\"value\":20000}",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"null",
        ],
    },
    Target {
        name: "checker",
        run: checker,
        cases: 1000,
        dictionary: &[
            b"--user\0",
            b"--real-name\0",
            b"--min-strength\0",
            b"--min-strength=",
            b"--list\0",
            b"--no-lists\0",
            b"--help\0",
            b"=",
            b"256",
            b"password",
        ],
    },
    Target {
        name: "directory",
        run: directory,
        cases: 25000,
        dictionary: &[
            b"20261202101500Z",
            b"20261202101500.123456Z",
            b"99991231235959.999999Z",
            b"00000101000000Z",
            b"#000000#000#000000",
            b" 4294967295 ",
            b" sshd ",
            b"%20",
            b"%",
            b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            b"2932896",
            b"-1",
        ],
    },
    Target {
        name: "handoff",
        run: handoff,
        cases: 25000,
        dictionary: &[b"DBPW\x01", b"\x00\x00", b"\x01\x00", b"\xff\xff", b"\x00\x05alice"],
    },
    Target {
        name: "welcome_template",
        run: welcome_template,
        cases: 10000,
        dictionary: &[
            b"{name}",
            b"{login}",
            b"{password}",
            b"{valid_for}",
            b"{valid_until}",
            b"{login_url}",
            b"{{",
            b"}}",
            b"{",
            b"}",
            b"\n",
            b"\0",
            b"\xc3\xa9",
        ],
    },
];

/// The config parser: any text gets a config or an error, never a panic,
/// and a config that parses yields a policy for any user.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = deadbolt_config::salvage_state_dir(&text);
    match Config::parse(&text, "fuzz.toml") {
        Ok(config) => {
            let _ = config.effective_lockout(|_| true);
            let _ = config.effective_lockout(|_| false);
            let _ = config.effective_password(|group| group.len() % 2 == 0);
        }
        Err(err) => assert!(!err.to_string().is_empty(), "an error that says nothing"),
    }
}

/// The state-file decoder: what decodes re-encodes to the same state, the
/// lock derives from it at any time, and merging it is idempotent (a replay
/// changes nothing, design principle 3).
pub fn state(data: &[u8]) {
    let decoded = match decode(data) {
        Ok(state) => state,
        Err(why) => {
            assert!(!why.is_empty(), "a decoding error that says nothing");
            return;
        }
    };
    let mut bytes = STATE_HEADER.as_bytes().to_vec();
    bytes.extend(serde_json::to_vec(&decoded).expect("a decoded state encodes"));
    assert_eq!(
        decode(&bytes).as_ref(),
        Ok(&decoded),
        "a state does not survive being written"
    );

    let mut merged = decoded.clone();
    merged.merge(&decoded);
    assert_eq!(merged, decoded, "merging a state with itself changed it");
    let mut into_empty = UserState::default();
    into_empty.merge(&decoded);
    let mut twice = into_empty.clone();
    twice.merge(&decoded);
    assert_eq!(twice, into_empty, "merging the same state twice changed it");

    let policies = [
        LockoutPolicy::default(),
        LockoutPolicy {
            deny: 1,
            unlock_after: UnlockAfter::Never,
            ..LockoutPolicy::default()
        },
        LockoutPolicy {
            deny: 0,
            ..LockoutPolicy::default()
        },
    ];
    let latest = decoded.failures.iter().map(|f| f.time).max();
    let times = [
        Timestamp(i64::MIN),
        Timestamp(0),
        Timestamp(i64::MAX),
        latest.unwrap_or(Timestamp(0)),
    ];
    for policy in &policies {
        for now in times {
            let status = policy.evaluate(&decoded, now);
            assert_eq!(
                status.locked,
                status.disabled || status.locked_out(),
                "locked disagrees with its reasons: {status:?}"
            );
            let _ = status.user_message(now);
        }
    }
}

/// The password checker's protocol. The first byte chooses what the rest
/// is: NUL-separated command-line arguments, or the password on standard
/// input, judged against the policy.
pub fn checker(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let args: Vec<OsString> = rest
            .split(|b| *b == 0)
            .map(|arg| OsString::from_vec(arg.to_vec()))
            .collect();
        let no_lists = args.iter().any(|a| a == "--no-lists");
        if let Ok(Command::Check(options)) = parse_args(args) {
            assert!(!options.user.is_empty(), "an empty --user was taken");
            assert_eq!(
                options.lists.is_empty(),
                no_lists,
                "lists to read, or none, against what was asked"
            );
        }
        return;
    }
    let password = read_password(Cursor::new(rest)).expect("reading from memory fails");
    assert_eq!(
        password.len(),
        rest.len().min(MAX_PASSWORD_BYTES + 1),
        "the password read is not what was sent"
    );
    let verdict = check(&CheckRequest {
        password: &password,
        user: "alice",
        real_name: "Alice Liddell",
        min_strength: mode >> 1,
        lists: &[],
    });
    assert_eq!(
        verdict.accepted,
        verdict.reasons.is_empty(),
        "accepted and reasons disagree: {verdict:?}"
    );
    assert!(verdict.score <= 4, "a score past 4: {verdict:?}");
    // The verdict is sent to the module as one line of JSON.
    let line = serde_json::to_string(&verdict).expect("a verdict encodes");
    assert!(!line.contains('\n'), "a verdict of more than one line");
    let back: CheckVerdict = serde_json::from_str(&line).expect("a verdict decodes");
    assert_eq!(back, verdict);
}

/// Our decoding of directory values: each parser refuses or gives a value
/// that the matching formatter writes back to the same value.
pub fn directory(data: &[u8]) {
    // ldap3 hands over attribute values as strings; those that are not
    // UTF-8 never reach these parsers.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // parse_time also reads times before 1970 (ppolicy's lock of year 0),
    // which format_time, for values of ours, never writes.
    if let Some(time) = encoding::parse_time(text)
        .ok()
        .filter(|t| t.as_micros() >= 0)
    {
        assert_eq!(
            encoding::parse_time(&encoding::format_time(time)),
            Ok(time),
            "a time does not survive being written"
        );
    }
    let _ = encoding::parse_csn_time(text);
    if let Ok(time) = encoding::parse_time_value(text) {
        assert_eq!(
            encoding::parse_time_value(&encoding::format_time(time)),
            Ok(time),
            "a time value does not survive being written"
        );
    }
    if let Ok(failure) = encoding::parse_failure(text, "web1") {
        // Written in canonical form a value near the bound can grow past it
        // (found by this target): the round trip holds within the bound.
        let written = encoding::format_failure(&failure);
        if written.len() <= encoding::MAX_VALUE_LEN {
            assert_eq!(
                encoding::parse_failure(&written, "web1"),
                Ok(failure),
                "a failure does not survive being written"
            );
        }
    }
    if let Ok(record) = encoding::parse_password(text) {
        // A value with a time to the second is 7 bytes longer written to the
        // microsecond, and may then pass the schema's bound.
        let canonical = text.find(' ') == Some("YYYYMMDDhhmmss.ffffffZ".len());
        match encoding::format_password(&record) {
            Some(written) => assert_eq!(encoding::parse_password(&written), Ok(record)),
            None => assert!(!canonical, "a password value read cannot be written back"),
        }
    }
    if let Ok(Some(days)) = encoding::parse_shadow_expire(text) {
        assert!(days >= 0, "a departure date before 1970");
    }
    let _ = encoding::valid_host_name(text);
}

/// The password hand-off framing: a frame that decodes is the only
/// encoding of what it holds, and every cut-short prefix of it waits for
/// more rather than being taken or refused.
pub fn handoff(data: &[u8]) {
    if let Ok(request) = decode_request(data) {
        let encoded = encode_request(&request).expect("a decoded request is within bounds");
        assert_eq!(&encoded[..], data, "a request has two encodings");
        assert_prefixes_incomplete(data, |bytes| decode_request(bytes).err());
    }
    if let Ok(answer) = decode_answer(data) {
        assert_eq!(encode_answer(&answer), data, "an answer has two encodings");
        assert_prefixes_incomplete(data, |bytes| decode_answer(bytes).err());
    }
}

fn assert_prefixes_incomplete(frame: &[u8], decode: impl Fn(&[u8]) -> Option<FrameError>) {
    for len in 0..frame.len() {
        assert_eq!(
            decode(&frame[..len]),
            Some(FrameError::Incomplete),
            "the first {len} bytes of a frame are not taken as incomplete"
        );
    }
}

/// The welcome message's template. The first byte says whether `[mail]
/// login_url` is set; the rest is the subject, a NUL, and the body. A
/// template taken names the password in its body and never in its subject,
/// renders literally what it does not name, and a refusal is one short line
/// that does not echo the template back.
pub fn welcome_template(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (subject, body) = text.split_once('\0').unwrap_or(("Welcome, {name}", &text));
    let has_login_url = flags & 1 == 1;
    let template = match Template::parse(subject, body, "fuzz.txt", has_login_url) {
        Ok(template) => template,
        Err(why) => {
            assert!(!why.is_empty(), "a refusal that says nothing");
            assert!(
                !why.contains('\n'),
                "a refusal of more than one line: {why:?}"
            );
            assert!(
                why.len() <= 400,
                "a refusal of {} bytes: the template is echoed back",
                why.len()
            );
            return;
        }
    };
    let fields = |password| Fields {
        name: "",
        login: "",
        password,
        valid_for: "",
        valid_until: "",
        login_url: has_login_url.then_some(""),
    };
    let (empty, secret) = (fields(""), fields("Pw"));
    let literal = template.body(&empty);
    let with_password = template.body(&secret);
    let named = (with_password.len() - literal.len()) / "Pw".len();
    assert!(named >= 1, "a body taken that never names the password");
    assert_eq!(
        template.subject(&secret),
        template.subject(&empty),
        "the password reaches the subject"
    );
    // What the template does not name comes out as written: escaped again,
    // it parses to a template giving the same text.
    let escaped = literal.replace('{', "{{").replace('}', "}}") + "{password}";
    let again = Template::parse("s", &escaped, "fuzz.txt", has_login_url)
        .unwrap_or_else(|e| panic!("a rendered body, escaped, is refused: {e}"));
    assert_eq!(
        again.body(&secret).as_str(),
        format!("{}Pw", literal.as_str()),
        "braces do not survive being escaped"
    );
}
