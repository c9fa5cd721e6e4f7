//! The benchmark's own options, parsed by hand (cargo passes `--bench`,
//! which is ignored).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const USAGE: &str = "usage: cargo bench --bench gateway -- [--url ws://HOST:PORT --token T \
[--pid N]] [--no-static] [--quick] [--clients N]";

pub struct Opts {
    pub url: Option<SocketAddr>,
    pub token: Option<String>,
    pub pid: Option<u32>,
    pub no_static: bool,
    pub quick: bool,
    pub clients: usize,
}

pub fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        url: None,
        token: None,
        pid: None,
        no_static: false,
        quick: false,
        clients: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--bench" => {}
            "--no-static" => o.no_static = true,
            "--quick" => o.quick = true,
            "--url" => o.url = Some(parse_url(&value()?)?),
            "--token" => o.token = Some(value()?),
            "--pid" => o.pid = Some(value()?.parse().map_err(|_| "--pid: not a number")?),
            "--clients" => {
                o.clients = value()?.parse().map_err(|_| "--clients: not a number")?;
                if !(1..=4000).contains(&o.clients) {
                    return Err("--clients: expected 1 to 4000".into());
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unexpected argument '{a}'\n{USAGE}")),
        }
    }
    if o.url.is_some() && o.token.is_none() {
        return Err("--url needs --token".into());
    }
    Ok(o)
}

/// `ws://HOST:PORT[/path]` with a loopback HOST (numeric or localhost).
pub fn parse_url(u: &str) -> Result<SocketAddr, String> {
    let bad = || format!("--url: expected ws://127.0.0.1:PORT, got '{u}'");
    let rest = u.strip_prefix("ws://").ok_or_else(bad)?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "localhost" => Ipv4Addr::LOCALHOST.into(),
        h => h.parse().map_err(|_| bad())?,
    };
    if !ip.is_loopback() {
        return Err(format!(
            "--url: only loopback gateways are measured, not {ip}"
        ));
    }
    Ok(SocketAddr::new(ip, port))
}
