//! `--listen ADDR:PORT`: an IP socket address, or a host name and port. Its own file so that
//! the fuzz target `cli_args` can include it.

/// Checks a `--listen` value; the error is clap's message.
pub fn parse_listen(value: &str) -> Result<String, String> {
    if value.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(value.to_owned());
    }
    match value.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() =>
        {
            Ok(value.to_owned())
        }
        _ => Err("expected ADDR:PORT, e.g. 127.0.0.1:8443 or [::1]:8443".to_owned()),
    }
}
