//! Prints, for each flow of a flow file, the flow text and the hex of a
//! one-entry OFPMP_FLOW reply vportd would send for it, to check the
//! encoding with `ovs-ofctl ofp-print HEX`:
//!
//! `cargo run -p openflow --example flow_stats_hex -- FILE`

use openflow::msg;

fn main() {
    let path = std::env::args().nth(1).expect("usage: flow_stats_hex FILE");
    let text = std::fs::read_to_string(&path).expect("reading the flow file");
    let rules = match ofproto::parse_flows(&text, &path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    for r in rules {
        let entry = msg::flow_stats_entry(&msg::FlowStats {
            table_id: r.table,
            duration_sec: 0,
            duration_nsec: 0,
            priority: r.priority,
            idle_timeout: r.idle_timeout,
            hard_timeout: r.hard_timeout,
            flags: 0,
            cookie: r.cookie,
            packet_count: 0,
            byte_count: 0,
            matches: &r.matches,
            instructions: &r.instructions,
        });
        match entry {
            Ok(e) => {
                let mut m = msg::MultipartReply::new(msg::OFP13_VERSION, 1, msg::OFPMP_FLOW);
                m.push(&e);
                let hex: String = m.finish()[0].iter().map(|b| format!("{b:02x}")).collect();
                println!("{}\n{hex}", ofproto::format_rule(&r));
            }
            Err(e) => println!("{}\nERR {e}", ofproto::format_rule(&r)),
        }
    }
}
