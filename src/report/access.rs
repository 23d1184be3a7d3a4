//! One access-log line: the shop's format (Nginx's `combined`, then `$request_time` and
//! `"$upstream_addr"`; the shipped site logs them as `tend_shop`, and plain `combined` lines
//! parse too, without the two), or any other format given as Nginx `log_format` text. Read in
//! place, without copying: a report reads millions of them.

/// The fields a report uses, borrowed from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access<'a> {
    /// `$remote_addr`.
    pub addr: &'a [u8],
    /// The hour of `$time_local` (0-23).
    pub hour: u8,
    /// Its minute (0-59).
    pub minute: u8,
    /// The method of `$request` (empty when the request line was not one).
    pub method: &'a [u8],
    /// Its path, query string included.
    pub target: &'a [u8],
    /// `$status`.
    pub status: u16,
    /// `$body_bytes_sent`.
    pub bytes: u64,
    /// `$http_referer` (`-` when none).
    pub referer: &'a [u8],
    /// `$http_user_agent`.
    pub agent: &'a [u8],
    /// `$request_time` in microseconds, when logged.
    pub micros: Option<u64>,
    /// `$upstream_addr` (the last one when Nginx tried several), when logged.
    pub upstream: Option<&'a [u8]>,
    /// The time zone's offset from UTC in minutes (`+0100`: 60), when the time names one.
    pub zone_minutes: Option<i32>,
    /// The day as the line writes it: `02/Dec/2026` (`$time_local`) or `2026-12-02`
    /// (`$time_iso8601`).
    pub day: &'a [u8],
}

/// Splits at the first `c`: (before, after it).
fn until(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr(c, s)?;
    Some((&s[..i], &s[i + 1..]))
}

fn memchr(c: u8, s: &[u8]) -> Option<usize> {
    memchr::memchr(c, s)
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter()
        .try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// Seconds with up to three decimals (`0.123`) as microseconds.
fn seconds(s: &[u8]) -> Option<u64> {
    let (whole, frac) = match memchr(b'.', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let mut micros = number(whole)?.checked_mul(1_000_000)?;
    let mut scale = 100_000;
    for &b in frac.iter().take(6) {
        if !b.is_ascii_digit() {
            return None;
        }
        micros += u64::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(micros)
}

/// `+HHMM` or `+HH:MM` (`Z`: 0) in minutes.
fn zone(s: &[u8]) -> Option<i32> {
    if s == b"Z" {
        return Some(0);
    }
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: Vec<u8> = s[1..].iter().copied().filter(|&b| b != b':').collect();
    if digits.len() != 4 {
        return None;
    }
    let h = i32::try_from(number(&digits[..2])?).ok()?;
    let m = i32::try_from(number(&digits[2..])?).ok()?;
    Some(sign * (h * 60 + m))
}

/// The hour, minute and zone of `$time_local` (`02/Dec/2026:14:05:09 +0000`).
fn time_local(t: &[u8]) -> Option<(u8, u8, Option<i32>)> {
    let hour = number(t.get(12..14)?)?;
    let minute = number(t.get(15..17)?)?;
    (hour < 24 && minute < 60 && t.get(2) == Some(&b'/'))
        .then(|| (hour as u8, minute as u8, t.get(21..).and_then(zone)))
}

/// The hour, minute and zone of `$time_iso8601` (`2026-12-02T14:05:09+00:00`).
fn time_iso(t: &[u8]) -> Option<(u8, u8, Option<i32>)> {
    let hour = number(t.get(11..13)?)?;
    let minute = number(t.get(14..16)?)?;
    (hour < 24 && minute < 60 && t.get(10) == Some(&b'T'))
        .then(|| (hour as u8, minute as u8, t.get(19..).and_then(zone)))
}

/// `$request` as method and target.
fn request(r: &[u8]) -> (&[u8], &[u8]) {
    match until(r, b' ') {
        Some((m, r)) => (m, until(r, b' ').map_or(r, |(t, _)| t)),
        None => (&b""[..], &b""[..]),
    }
}

/// `$upstream_addr`'s server that answered: the last one when Nginx tried several.
fn last_upstream(up: &[u8]) -> Option<&[u8]> {
    // "10.0.0.2:8080, 10.0.0.3:8080" or "10.0.0.2:8080 : 10.0.0.3:8080" (internal redirect).
    let cut = [&b", "[..], b" : "]
        .iter()
        .filter_map(|sep| memchr::memmem::rfind(up, sep).map(|i| i + sep.len()))
        .max()
        .unwrap_or(0);
    let last = up[cut..].trim_ascii();
    (last != b"-" && !last.is_empty()).then_some(last)
}

/// Parses one line (without its newline) of the shop's format; `None` when it is not of it.
pub fn parse(line: &[u8]) -> Option<Access<'_>> {
    let (addr, rest) = until(line, b' ')?;
    let (_, rest) = until(rest, b'[')?;
    let (time, rest) = until(rest, b']')?;
    let (hour, minute, zone_minutes) = time_local(time)?;
    let day = &time[..11];
    let rest = rest.strip_prefix(b" \"")?;
    let (req, rest) = until(rest, b'"')?;
    let (method, target) = request(req);
    let rest = rest.strip_prefix(b" ")?;
    let (status, rest) = until(rest, b' ')?;
    let status = u16::try_from(number(status)?).ok()?;
    let (bytes, rest) = until(rest, b' ')?;
    let bytes = number(bytes).unwrap_or(0);
    let rest = rest.strip_prefix(b"\"")?;
    let (referer, rest) = until(rest, b'"')?;
    let rest = rest.strip_prefix(b" \"")?;
    let (agent, rest) = match until(rest, b'"') {
        Some(x) => x,
        None => (rest, &b""[..]),
    };
    let mut micros = None;
    let mut upstream = None;
    if let Some(rest) = rest.strip_prefix(b" ") {
        let (rt, rest) = until(rest, b' ').unwrap_or((rest, &b""[..]));
        micros = seconds(rt);
        if let Some(up) = rest.strip_prefix(b"\"").and_then(|r| until(r, b'"')).map(|(u, _)| u) {
            upstream = last_upstream(up);
        }
    }
    Some(Access {
        addr,
        hour,
        minute,
        method,
        target,
        status,
        bytes,
        referer,
        agent,
        micros,
        upstream,
        zone_minutes,
        day,
    })
}

/// Nginx's `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The shipped site's `tend_shop` format: `combined`, the request's time and the upstream.
pub const SHOP: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time "$upstream_addr""#;

/// A variable of `log_format` the report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Addr,
    TimeLocal,
    TimeIso,
    Request,
    Method,
    Uri,
    Status,
    Bytes,
    Referer,
    Agent,
    RequestTime,
    Upstream,
    /// Read past, not used.
    Other,
}

impl Field {
    fn of(name: &str) -> Field {
        match name {
            "remote_addr" | "binary_remote_addr" => Field::Addr,
            "time_local" => Field::TimeLocal,
            "time_iso8601" => Field::TimeIso,
            "request" => Field::Request,
            "request_method" => Field::Method,
            "request_uri" | "uri" | "document_uri" => Field::Uri,
            "status" => Field::Status,
            "body_bytes_sent" | "bytes_sent" => Field::Bytes,
            "http_referer" => Field::Referer,
            "http_user_agent" => Field::Agent,
            "request_time" => Field::RequestTime,
            "upstream_addr" => Field::Upstream,
            _ => Field::Other,
        }
    }
}

/// A piece of a compiled `log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Var(Field),
}

/// How access-log lines are read: the shop's format or plain `combined` by the hand-written
/// reader (the default), or another `log_format`, its variables found between its fixed text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Format {
    custom: Option<Vec<Piece>>,
}

/// Why a `log_format` text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Two variables with nothing between them cannot be told apart in a line.
    #[error("`${0}` follows `${1}` with nothing between them: a line cannot be split there")]
    Adjacent(String, String),
    /// The report needs the status and the time of each request.
    #[error("the format has no `${0}`")]
    Missing(&'static str),
    /// Quotes of `log_format name '...' '...';` that do not close.
    #[error("a quote does not close")]
    Quote,
}

/// The format string of `text`: the text itself, or the quoted strings of a
/// `log_format NAME [escape=...] '...' '...';` directive copied from nginx.conf.
fn format_string(text: &str) -> Result<String, FormatError> {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("log_format") else {
        return Ok(t.to_string());
    };
    let mut out = String::new();
    let mut chars = rest.trim_end().trim_end_matches(';').chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            loop {
                match chars.next() {
                    None => return Err(FormatError::Quote),
                    Some('\\') => out.extend(chars.next()),
                    Some(q) if q == c => break,
                    Some(x) => out.push(x),
                }
            }
        }
    }
    Ok(out)
}

impl Format {
    /// Compiles Nginx `log_format` text (`$var` and `${var}` between fixed text), or a whole
    /// `log_format name '...';` directive. `combined` and the shop's format use the fast reader.
    pub fn nginx(text: &str) -> Result<Format, FormatError> {
        let text = format_string(text)?;
        let text = text.as_str();
        if text == "combined" || text == COMBINED || text == SHOP {
            return Ok(Format::default());
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let b = text.as_bytes();
        let mut i = 0;
        let mut fixed = Vec::new();
        while i < b.len() {
            let name_at = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
            if b[i] == b'$' && (name_at(i + 1) || b.get(i + 1) == Some(&b'{')) {
                let braced = b[i + 1] == b'{';
                let start = i + 1 + usize::from(braced);
                let mut end = start;
                while name_at(end) {
                    end += 1;
                }
                let name = &text[start..end];
                i = end + usize::from(braced && b.get(end) == Some(&b'}'));
                if !fixed.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut fixed)));
                } else if let Some(Piece::Var(_)) = pieces.last() {
                    let before = names.last().cloned().unwrap_or_default();
                    return Err(FormatError::Adjacent(name.to_string(), before));
                }
                pieces.push(Piece::Var(Field::of(name)));
                names.push(name.to_string());
            } else {
                fixed.push(b[i]);
                i += 1;
            }
        }
        if !fixed.is_empty() {
            pieces.push(Piece::Text(fixed));
        }
        let has = |f: &[Field]| pieces.iter().any(|p| matches!(p, Piece::Var(x) if f.contains(x)));
        if !has(&[Field::Status]) {
            return Err(FormatError::Missing("status"));
        }
        if !has(&[Field::TimeLocal, Field::TimeIso]) {
            return Err(FormatError::Missing("time_local"));
        }
        Ok(Format { custom: Some(pieces) })
    }

    /// Parses one line (without its newline); `None` when it is not of the format.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Option<Access<'a>> {
        let Some(pieces) = &self.custom else {
            return parse(line);
        };
        let mut a = Access {
            addr: b"",
            hour: 0,
            minute: 0,
            method: b"",
            target: b"",
            status: 0,
            bytes: 0,
            referer: b"-",
            agent: b"",
            micros: None,
            upstream: None,
            zone_minutes: None,
            day: b"",
        };
        let (mut timed, mut statused) = (false, false);
        let mut rest = line;
        for (k, piece) in pieces.iter().enumerate() {
            let field = match piece {
                Piece::Text(t) => {
                    rest = rest.strip_prefix(t.as_slice())?;
                    continue;
                }
                Piece::Var(f) => *f,
            };
            let value = match pieces.get(k + 1) {
                Some(Piece::Text(t)) => {
                    let i = memchr::memmem::find(rest, t)?;
                    let v = &rest[..i];
                    rest = &rest[i..];
                    v
                }
                _ => std::mem::take(&mut rest),
            };
            match field {
                Field::Addr => a.addr = value,
                Field::TimeLocal => {
                    (a.hour, a.minute, a.zone_minutes) = time_local(value)?;
                    a.day = &value[..11];
                    timed = true;
                }
                Field::TimeIso => {
                    (a.hour, a.minute, a.zone_minutes) = time_iso(value)?;
                    a.day = &value[..10];
                    timed = true;
                }
                Field::Request => (a.method, a.target) = request(value),
                Field::Method => a.method = value,
                Field::Uri => a.target = value,
                Field::Status => {
                    a.status = u16::try_from(number(value)?).ok()?;
                    statused = true;
                }
                Field::Bytes => a.bytes = number(value).unwrap_or(0),
                Field::Referer => a.referer = value,
                Field::Agent => a.agent = value,
                Field::RequestTime => a.micros = seconds(value),
                Field::Upstream => a.upstream = last_upstream(value),
                Field::Other => {}
            }
        }
        (timed && statused && rest.is_empty()).then_some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shops_format_and_plain_combined_parse() {
        let line = br#"10.0.0.9 - - [03/Dec/2026:14:05:09 +0000] "GET /product/tea/7?x=1 HTTP/1.1" 200 512 "http://shop/" "Mozilla/5.0 (X11)" 0.042 "10.0.0.2:8080, 10.0.0.3:8080""#;
        let a = parse(line).expect("parses");
        assert_eq!(a.addr, b"10.0.0.9");
        assert_eq!((a.hour, a.minute), (14, 5));
        assert_eq!(a.method, b"GET");
        assert_eq!(a.target, b"/product/tea/7?x=1");
        assert_eq!((a.status, a.bytes), (200, 512));
        assert_eq!(a.referer, b"http://shop/");
        assert_eq!(a.agent, b"Mozilla/5.0 (X11)");
        assert_eq!(a.micros, Some(42_000));
        assert_eq!(a.upstream, Some(&b"10.0.0.3:8080"[..]));
        let plain = br#"10.0.0.9 - - [03/Dec/2026:00:00:00 +0000] "-" 400 0 "-" "-""#;
        let p = parse(plain).expect("parses");
        assert_eq!((p.status, p.method, p.micros, p.upstream), (400, &b""[..], None, None));
        for bad in [
            &b""[..],
            b"garbage",
            b"1.2.3.4 - - [03/Dec/2026:99:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        ] {
            assert!(parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn log_format_text_compiles_or_says_why_not() {
        // The shop's format spelled as another format reads the same fields as the fast reader.
        let spaced = Format::nginx(&SHOP.replace(" - $remote_user", " - ${remote_user}")).expect("compiles");
        assert_eq!(Format::nginx(SHOP), Ok(Format::default()));
        assert_eq!(Format::nginx("combined"), Ok(Format::default()));
        let line = br#"10.0.0.9 - - [03/Dec/2026:14:05:09 +0100] "GET /a?b HTTP/1.1" 200 512 "-" "M" 0.042 "10.0.0.2:8080 : 10.0.0.3:8080""#;
        assert_eq!(spaced.parse(line), parse(line));
        assert_eq!(
            parse(line).map(|a| (a.zone_minutes, a.upstream)),
            Some((Some(60), Some(&b"10.0.0.3:8080"[..])))
        );
        assert_eq!(
            Format::nginx("$remote_addr$status [$time_local]"),
            Err(FormatError::Adjacent("status".into(), "remote_addr".into()))
        );
        assert_eq!(
            Format::nginx("$remote_addr [$time_local]"),
            Err(FormatError::Missing("status"))
        );
        assert_eq!(
            Format::nginx("$remote_addr $status"),
            Err(FormatError::Missing("time_local"))
        );
        assert_eq!(
            Format::nginx("log_format x '$status [$time_local]"),
            Err(FormatError::Quote)
        );
        let iso =
            Format::nginx("log_format x escape=json '[$time_iso8601] $status ' \"$request_time\";").expect("compiles");
        let a = iso.parse(b"[2026-12-02T23:59:59-05:30] 404 0.5").expect("parses");
        assert_eq!(
            (a.hour, a.minute, a.status, a.micros, a.zone_minutes),
            (23, 59, 404, Some(500_000), Some(-330))
        );
        assert!(
            iso.parse(b"2026-12-02T23:59:59-05:30 404 0.5").is_none(),
            "the fixed text must match"
        );
    }
}
