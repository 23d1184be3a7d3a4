//! Ansible host ranges in inventory names: `web[01:10].shop`, `db-[a:c]`, `node[0:20:5]`.

/// Expands every `[start:end(:step)]` in a host name; a name without brackets is itself.
pub fn expand_host_range(name: &str) -> Result<Vec<String>, String> {
    let Some(open) = name.find('[') else {
        return Ok(vec![name.to_string()]);
    };
    let Some(close) = name[open..].find(']').map(|i| open + i) else {
        return Err(format!("host range in `{name}` has no closing `]`"));
    };
    let (head, spec, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
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
    let items: Vec<String> = if let (Ok(a), Ok(b)) = (start.parse::<usize>(), end.parse::<usize>()) {
        if a > b {
            return Err(format!("host range `[{spec}]` in `{name}` goes backwards"));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        (a..=b).step_by(step).map(|n| format!("{n:0width$}")).collect()
    } else {
        let (mut a, mut b) = (start.chars(), end.chars());
        match (a.next(), a.next(), b.next(), b.next()) {
            (Some(x), None, Some(y), None) if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() && x <= y => {
                (x..=y).step_by(step).map(String::from).collect()
            }
            _ => {
                return Err(format!(
                    "host range `[{spec}]` in `{name}` must be numbers or single letters"
                ));
            }
        }
    };
    let mut out = Vec::new();
    for rest in expand_host_range(tail)? {
        for item in &items {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
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
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(x("web[3:1]").unwrap_err().contains("backwards"));
        assert!(x("web[1:3").unwrap_err().contains("closing"));
        assert!(x("web[x]").is_err());
    }
}
