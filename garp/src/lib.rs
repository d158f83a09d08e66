//! Layer-2 announcements: gratuitous ARP, unsolicited NA, and their schedule.
