//! The PROXY protocol parser (spargio-service) on arbitrary bytes: never
//! panics; a header it finds parses the same alone, every shorter prefix
//! of it asks for more (a header sent in pieces is never refused or
//! mistaken for other traffic), and its accessors hold up.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spargio_service::proxy::{parse, Parsed};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Parsed::Header(header, len)) => {
            assert!(len <= data.len());
            assert_eq!(parse(&data[..len]), Ok(Parsed::Header(header.clone(), len)));
            for cut in 0..len {
                match parse(&data[..cut]) {
                    Ok(Parsed::Incomplete(need)) => assert!(need > cut && need <= len),
                    other => panic!("prefix {cut} of a {len}-byte header: {other:?}"),
                }
            }
            let _ = (header.source(), header.destination(), header.authority());
            assert!(header.tlvs().map(|(_, v)| v.len() + 3).sum::<usize>() <= len);
            if let Some(ssl) = header.ssl() {
                let _ = (ssl.version(), ssl.common_name(), ssl.cipher());
                let _ = ssl.sub_tlvs().count();
            }
        }
        Ok(Parsed::Incomplete(need)) => assert!(need > data.len()),
        Ok(Parsed::NotProxy) | Err(_) => {}
    }
});
