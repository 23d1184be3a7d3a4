//! Ansible host ranges in inventory names: `web[01:10].shop`, `db-[a:c]`, `node[0:20:5]`.

/// The most hosts one name may expand to: far past any fleet, and a bound on the memory a
/// name such as `h[1:9][1:9]...` or `h[0:99999999999]` could otherwise take.
pub const MAX_HOSTS: usize = 100_000;

/// Expands every `[start:end(:step)]` in a host name; a name without brackets is itself.
pub fn expand_host_range(name: &str) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|i| open + i) else {
            return Err(format!("host range in `{name}` has no closing `]`"));
        };
        let items = range_items(name, &rest[open + 1..close])?;
        if out.len().saturating_mul(items.len()) > MAX_HOSTS {
            return Err(format!("host range in `{name}` expands to more than {MAX_HOSTS} hosts"));
        }
        let head = &rest[..open];
        out = out
            .iter()
            .flat_map(|before| items.iter().map(move |item| format!("{before}{head}{item}")))
            .collect();
        rest = &rest[close + 1..];
    }
    for n in &mut out {
        n.push_str(rest);
    }
    Ok(out)
}

/// The items of one range's `spec` (what is between the brackets) of host name `name`.
fn range_items(name: &str, spec: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [s, e] => (*s, *e, 1usize),
        [s, e, st] => (
            *s,
            *e,
            st.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("host range `[{spec}]` in `{name}` has an invalid step"))?,
        ),
        _ => {
            return Err(format!(
                "host range `[{spec}]` in `{name}` must look like `[1:10]` or `[a:f]`"
            ));
        }
    };
    if let (Ok(a), Ok(b)) = (start.parse::<usize>(), end.parse::<usize>()) {
        if a > b {
            return Err(format!("host range `[{spec}]` in `{name}` goes backwards"));
        }
        if (b - a) / step >= MAX_HOSTS {
            return Err(format!("host range in `{name}` expands to more than {MAX_HOSTS} hosts"));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        return Ok((a..=b).step_by(step).map(|n| format!("{n:0width$}")).collect());
    }
    let (mut a, mut b) = (start.chars(), end.chars());
    match (a.next(), a.next(), b.next(), b.next()) {
        (Some(x), None, Some(y), None) if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() && x <= y => {
            Ok((x..=y).step_by(step).map(String::from).collect())
        }
        _ => Err(format!(
            "host range `[{spec}]` in `{name}` must be numbers or single letters"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::expand_host_range as x;

    #[test]
    fn numeric_alpha_and_step() {
        assert_eq!(
            x("web[01:03].shop").unwrap(),
            ["web01.shop", "web02.shop", "web03.shop"]
        );
        assert_eq!(x("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(x("n[0:10:5]").unwrap(), ["n0", "n5", "n10"]);
        assert_eq!(x("plain").unwrap(), ["plain"]);
        // Ansible's order: the first range varies slowest.
        assert_eq!(x("r[1:2]c[a:b]").unwrap(), ["r1ca", "r1cb", "r2ca", "r2cb"]);
    }

    #[test]
    fn ranges_past_the_host_limit_are_errors() {
        assert_eq!(x("h[1:100000]").map(|v| v.len()), Ok(100_000));
        let many = "h[1:3]".repeat(70);
        assert_eq!(
            x(&many),
            Err(format!("host range in `{many}` expands to more than 100000 hosts"))
        );
        assert!(x("h[0:99999999999999]").is_err());
        assert!(x("h[1:1000]x[1:1000]").is_err());
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(x("web[3:1]").unwrap_err().contains("backwards"));
        assert!(x("web[1:3").unwrap_err().contains("closing"));
        assert!(x("web[x]").is_err());
    }
}
