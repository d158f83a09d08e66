//! The VRRP protocol as pure values: no sockets, no clocks, no threads.

pub mod fsm;
pub mod packet;
pub mod sim;
