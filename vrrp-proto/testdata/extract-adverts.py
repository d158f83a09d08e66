# Prints first and last VRRP packet of each pcap (Ethernet linktype): IP meta, full IPv4 packet, payload.
import struct,sys
def pkts(fn):
    d=open(fn,'rb').read()
    magic,=struct.unpack('<I',d[:4]); assert magic==0xa1b2c3d4, hex(magic)
    lt,=struct.unpack('<I',d[20:24]); assert lt==1
    o=24
    while o<len(d):
        ts,tu,cl,ol=struct.unpack('<IIII',d[o:o+16]); o+=16
        yield d[o:o+cl]; o+=cl
for fn in sys.argv[1:]:
    ps=list(pkts(fn))
    for idx in (0,len(ps)-1):
        f=ps[idx]; et=struct.unpack('>H',f[12:14])[0]; ip=f[14:]
        if et==0x0800:
            ihl=(ip[0]&15)*4; tl=struct.unpack('>H',ip[2:4])[0]
            print(fn,idx,'v4 ttl',ip[8],'src',ip[12:16].hex(),'dst',ip[16:20].hex()); print(' ip  ',ip[:tl].hex()); print(' vrrp',ip[ihl:tl].hex())
        else:
            pl=struct.unpack('>H',ip[4:6])[0]
            print(fn,idx,'v6 hl',ip[7],'nh',ip[6],'src',ip[8:24].hex(),'dst',ip[24:40].hex()); print(' vrrp',ip[40:40+pl].hex())
