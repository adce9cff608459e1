//! Proxies from the environment: `http_proxy`, `https_proxy`, `all_proxy`
//! and `no_proxy`, in either case, by the convention curl, Go and reqwest
//! share.

use super::no_proxy::NoProxy;
use super::proxy::{InvalidProxy, Proxy};

/// The proxies the variables that `var` looks up name, most specific
/// first: the `http` one, the `https` one, then the one for both. Each
/// takes the `no_proxy` list, whose unreadable entries are skipped.
/// Empty variables count as unset.
///
/// The lowercase name wins over the uppercase one. `HTTP_PROXY` is not
/// read when `REQUEST_METHOD` is set: in a CGI program a request's `Proxy:`
/// header arrives as `HTTP_PROXY` ("httpoxy"), so only `http_proxy` is
/// trusted there (Go and reqwest do the same; curl never reads it).
pub(crate) fn proxies_from(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Proxy>, InvalidProxy> {
    let read = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let either = |lower: &'static str, upper: &'static str| {
        read(lower)
            .map(|value| (lower, value))
            .or_else(|| read(upper).map(|value| (upper, value)))
    };
    // Other tools skip what they cannot read in this list (`10.*`,
    // `<local>`); failing on it would stop a program that uses no proxy.
    let bypass = either("no_proxy", "NO_PROXY")
        .map(|(_, list)| NoProxy::lenient(&list))
        .unwrap_or_default();
    let cgi = var("REQUEST_METHOD").is_some();
    let http = if cgi {
        read("http_proxy").map(|value| ("http_proxy", value))
    } else {
        either("http_proxy", "HTTP_PROXY")
    };
    let found = [
        (http, Proxy::http::<String> as fn(String) -> _),
        (either("https_proxy", "HTTPS_PROXY"), Proxy::https::<String>),
        (either("all_proxy", "ALL_PROXY"), Proxy::new::<String>),
    ];
    let mut proxies = Vec::new();
    for (setting, make) in found {
        let Some((name, value)) = setting else {
            continue;
        };
        let proxy = make(with_scheme(value.trim())).map_err(|e| e.in_variable(name))?;
        proxies.push(proxy.no_proxy(bypass.clone()));
    }
    Ok(proxies)
}

/// `value` as a URI: `host:port` alone, as the variables often hold it,
/// means `http://host:port`.
fn with_scheme(value: &str) -> String {
    if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::client::target::Target;

    /// The proxies `vars` name, each shown as which of the probe targets
    /// it takes and where it goes.
    fn proxies(vars: &[(&str, &str)]) -> Result<Vec<String>, InvalidProxy> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let probes = ["http://a.test/", "https://a.test/", "http://skip.test/"];
        let shown = proxies_from(|name| vars.get(name).cloned())?
            .iter()
            .map(|p| {
                let takes: Vec<&str> = probes
                    .iter()
                    .filter(|uri| p.is_for(&Target::from_uri(&uri.parse().unwrap()).unwrap()))
                    .copied()
                    .collect();
                format!("{}:{} {takes:?}", p.host(), p.port())
            })
            .collect();
        Ok(shown)
    }

    #[test]
    fn each_scheme_has_its_variable_and_the_lowercase_name_wins() {
        let got = proxies(&[
            ("http_proxy", "http://h:1"),
            ("HTTP_PROXY", "http://upper:1"),
            ("HTTPS_PROXY", "s:2"),
            ("all_proxy", "http://all:3/"),
            ("no_proxy", "skip.test"),
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                r#"h:1 ["http://a.test/"]"#,
                r#"s:2 ["https://a.test/"]"#,
                r#"all:3 ["http://a.test/", "https://a.test/"]"#,
            ]
        );
        assert_eq!(proxies(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            proxies(&[("http_proxy", "  ")]).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn cgi_programs_do_not_trust_the_uppercase_http_proxy() {
        let vars = [("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(proxies(&vars).unwrap(), Vec::<String>::new());
        let vars = [("http_proxy", "http://ok:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(
            proxies(&vars).unwrap(),
            [r#"ok:1 ["http://a.test/", "http://skip.test/"]"#]
        );
    }

    #[test]
    fn a_bad_value_is_an_error_naming_its_variable() {
        let err = proxies(&[("HTTPS_PROXY", "socks5://s:1")]).unwrap_err();
        assert!(err.to_string().starts_with("HTTPS_PROXY: "), "{err}");
        let err = proxies(&[("all_proxy", "http://h:1/path")]).unwrap_err();
        assert!(err.to_string().starts_with("all_proxy: "), "{err}");
    }

    #[test]
    fn unreadable_no_proxy_entries_are_skipped() {
        assert_eq!(
            proxies(&[("no_proxy", "localhost,10.*,<local>")]).unwrap(),
            Vec::<String>::new()
        );
        let got = proxies(&[
            ("http_proxy", "h:1"),
            ("NO_PROXY", "10.*, skip.test, ::/999"),
        ]);
        assert_eq!(got.unwrap(), [r#"h:1 ["http://a.test/"]"#]);
    }
}
