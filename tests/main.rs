//! The one integration-test binary: every test spawns the real `clawgate`
//! and talks to it over loopback sockets.
mod util;

mod agent_cli;
mod browser;
mod builtin_page;
mod ceiling;
mod client;
mod contrib;
mod control_ui;
mod devices;
mod devices_cli;
mod hooks;
mod http;
mod hygiene;
mod limits;
mod man;
mod newcomer;
mod nodes;
mod notify;
mod openai_http;
mod openclaw;
mod openclaw_agent;
mod openclaw_nodes;
mod peers;
mod protocol;
mod reload;
mod runs;
mod service;
mod service_status;
mod sessions;
mod slots;
mod startup;
