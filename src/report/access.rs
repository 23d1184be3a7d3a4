//! One access-log line of the shop's format: Nginx's `combined`, then `$request_time` and
//! `"$upstream_addr"` (the shipped site logs them as `tend_shop`; plain `combined` lines parse
//! too, without the two). Read in place, without copying: a report reads millions of them.

/// The fields a report uses, borrowed from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access<'a> {
    /// `$remote_addr`.
    pub addr: &'a [u8],
    /// The hour of `$time_local` (0-23).
    pub hour: u8,
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
}

/// Splits at the first `c`: (before, after it).
fn until(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr(c, s)?;
    Some((&s[..i], &s[i + 1..]))
}

fn memchr(c: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == c)
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

/// Parses one line (without its newline); `None` when it is not of the format.
pub fn parse(line: &[u8]) -> Option<Access<'_>> {
    let (addr, rest) = until(line, b' ')?;
    let (_, rest) = until(rest, b'[')?;
    let (time, rest) = until(rest, b']')?;
    // dd/Mon/yyyy:HH:MM:SS +zone
    let hour = number(time.get(12..14)?)?;
    if hour > 23 {
        return None;
    }
    let rest = rest.strip_prefix(b" \"")?;
    let (request, rest) = until(rest, b'"')?;
    let (method, target) = match until(request, b' ') {
        Some((m, r)) => (m, until(r, b' ').map_or(r, |(t, _)| t)),
        None => (&b""[..], &b""[..]),
    };
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
            // "10.0.0.2:8080, 10.0.0.3:8080": the one that answered is the last.
            let last = up.rsplit(|&b| b == b',').next().unwrap_or(up);
            let last = last.strip_prefix(b" ").unwrap_or(last);
            if last != b"-" && !last.is_empty() {
                upstream = Some(last);
            }
        }
    }
    Some(Access {
        addr,
        hour: hour as u8,
        method,
        target,
        status,
        bytes,
        referer,
        agent,
        micros,
        upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shops_format_and_plain_combined_parse() {
        let line = br#"10.0.0.9 - - [03/Dec/2026:14:05:09 +0000] "GET /product/tea/7?x=1 HTTP/1.1" 200 512 "http://shop/" "Mozilla/5.0 (X11)" 0.042 "10.0.0.2:8080, 10.0.0.3:8080""#;
        let a = parse(line).expect("parses");
        assert_eq!(a.addr, b"10.0.0.9");
        assert_eq!(a.hour, 14);
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
}
