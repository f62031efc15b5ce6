//+------------------------------------------------------------------+
//| MT5Bridge/Zmq.mqh                                                |
//| The handful of libzmq calls the EA needs, imported directly from |
//| libzmq.dll (64-bit), and one DEALER socket that never blocks     |
//| without a deadline.                                              |
//|                                                                  |
//| Why not a full binding: a dozen C functions with stable, plain   |
//| signatures (zmq.h, libzmq 4.x) are less to break when MetaEditor |
//| or the binding changes, and there is no third-party include for  |
//| the trader to install. On 64-bit Windows pointers and size_t are |
//| 8 bytes: they are passed as long / ulong; strings and buffers as |
//| uchar arrays, which MQL5 hands to the DLL as pointers.           |
//+------------------------------------------------------------------+
#ifndef MT5B_ZMQ_MQH
#define MT5B_ZMQ_MQH

#import "libzmq.dll"
long zmq_ctx_new();
int  zmq_ctx_term(long context);
long zmq_socket(long context,int type);
int  zmq_close(long socket);
int  zmq_setsockopt(long socket,int option,const uchar &optval[],ulong optvallen);
int  zmq_connect(long socket,const uchar &endpoint[]);
int  zmq_send(long socket,const uchar &buf[],ulong len,int flags);
int  zmq_recv(long socket,uchar &buf[],ulong len,int flags);
int  zmq_errno();
void zmq_version(int &major,int &minor,int &patch);
int  zmq_has(const uchar &capability[]);
int  zmq_curve_keypair(uchar &z85_public_key[],uchar &z85_secret_key[]);
#import

//--- values from zmq.h (libzmq 4.x)
#define ZMQ_DEALER             5
#define ZMQ_ROUTING_ID         5
#define ZMQ_LINGER             17
#define ZMQ_RECONNECT_IVL      18
#define ZMQ_RECONNECT_IVL_MAX  21
#define ZMQ_SNDHWM             23
#define ZMQ_RCVHWM             24
#define ZMQ_RCVTIMEO           27
#define ZMQ_SNDTIMEO           28
#define ZMQ_IMMEDIATE          39
#define ZMQ_CURVE_PUBLICKEY    48
#define ZMQ_CURVE_SECRETKEY    49
#define ZMQ_CURVE_SERVERKEY    50
#define ZMQ_DONTWAIT           1
//--- errno values as libzmq reports them on Windows (EAGAIN from the MSVC runtime)
#define ZMQ_EAGAIN             11
#define ZMQ_ETERM              156384765
//--- a Z85 CURVE key is 40 characters
#define ZMQ_Z85_KEY_CHARS      40

//--- largest bridge reply the EA reads; COMMAND, WELCOME and ERROR are far smaller
#define ZMQ_RECEIVE_BUFFER     65536

//--- what Receive found
#define ZMQ_GOT_NOTHING        0
#define ZMQ_GOT_MESSAGE        1
#define ZMQ_GOT_ERROR          (-1)

//+------------------------------------------------------------------+
//| A string as a zero-terminated byte array (ANSI: endpoints and    |
//| keys are ASCII).                                                 |
//+------------------------------------------------------------------+
int ZmqCString(const string text,uchar &bytes[])
  {
   // WHOLE_ARRAY converts the whole string and appends its terminating zero
   int n=StringToCharArray(text,bytes,0,WHOLE_ARRAY,CP_ACP);
   if(n>0 && bytes[n-1]==0)
      n--;
   ArrayResize(bytes,n+1);
   bytes[n]=0;
   return(n);
  }

//+------------------------------------------------------------------+
//| The libzmq version, e.g. "4.3.5". Also the EA's first call into  |
//| the DLL, made in OnInit after the check that DLL imports are     |
//| allowed. The terminal binds imports early: when libzmq.dll       |
//| cannot be loaded (missing, 32-bit, a library it needs missing)   |
//| it logs "Cannot load 'libzmq.dll'" with the Windows error code   |
//| when the EA loads, and this call stops the EA with               |
//| "unresolved import function call": OnInit never returns, so the  |
//| EA cannot report it itself (the install guide's checklist does). |
//+------------------------------------------------------------------+
string ZmqVersion(void)
  {
   int major=0,minor=0,patch=0;
   zmq_version(major,minor,patch);
   return(IntegerToString(major)+"."+IntegerToString(minor)+"."+IntegerToString(patch));
  }

//+------------------------------------------------------------------+
//| One DEALER socket in its own context. Every wait has a deadline: |
//| sends and receives set their own timeout in milliseconds, and a  |
//| timeout of 0 means "only if it can be done at once".             |
//+------------------------------------------------------------------+
class CZmqDealer
  {
private:
   long              m_context;
   long              m_socket;
   int               m_errno;
   uchar             m_buffer[];
   uchar             m_out[];

   bool              IntOption(const int option,const int value);
   bool              BytesOption(const int option,const string value,const int length);

public:
                     CZmqDealer(void);
   bool              Init(void);
   bool              Open(const string endpoint,const string identity,const string server_key,
                          const string public_key,const string secret_key,string &problem);
   void              Close(const int linger_ms);
   void              Shutdown(void);
   bool              IsOpen(void) const { return(m_socket!=0); }
   bool              Send(const string text,const int timeout_ms);
   int               Receive(string &text,const int timeout_ms);
   int               LastErrno(void) const { return(m_errno); }
   string            LastError(void) const;
  };

CZmqDealer::CZmqDealer(void)
  {
   m_context=0;
   m_socket=0;
   m_errno=0;
  }

bool CZmqDealer::Init(void)
  {
   if(m_context!=0)
      return(true);
   m_context=zmq_ctx_new();
   if(m_context==0)
     {
      m_errno=zmq_errno();
      return(false);
     }
   ArrayResize(m_buffer,ZMQ_RECEIVE_BUFFER);
   return(true);
  }

//--- an int option travels as 4 little-endian bytes, as the C int the library expects
bool CZmqDealer::IntOption(const int option,const int value)
  {
   uchar bytes[];
   ArrayResize(bytes,4);
   bytes[0]=(uchar)(value&0xFF);
   bytes[1]=(uchar)((value>>8)&0xFF);
   bytes[2]=(uchar)((value>>16)&0xFF);
   bytes[3]=(uchar)((value>>24)&0xFF);
   if(zmq_setsockopt(m_socket,option,bytes,4)!=0)
     {
      m_errno=zmq_errno();
      return(false);
     }
   return(true);
  }

bool CZmqDealer::BytesOption(const int option,const string value,const int length)
  {
   uchar bytes[];
   ZmqCString(value,bytes);
   if(zmq_setsockopt(m_socket,option,bytes,length)!=0)
     {
      m_errno=zmq_errno();
      return(false);
     }
   return(true);
  }

//+------------------------------------------------------------------+
//| A fresh socket connected to the bridge. LINGER 0: nothing queued |
//| for a bridge that has gone away may hold the EA up or reach a    |
//| later bridge. IMMEDIATE: a message is queued only on a live      |
//| connection, so a send to an absent bridge fails at once instead  |
//| of piling up stale ticks. connect() itself never blocks.         |
//+------------------------------------------------------------------+
bool CZmqDealer::Open(const string endpoint,const string identity,const string server_key,
                      const string public_key,const string secret_key,string &problem)
  {
   Close(0);
   if(!Init())
     {
      problem="zmq_ctx_new failed: "+LastError();
      return(false);
     }
   m_socket=zmq_socket(m_context,ZMQ_DEALER);
   if(m_socket==0)
     {
      m_errno=zmq_errno();
      problem="zmq_socket failed: "+LastError();
      return(false);
     }
   bool ok=IntOption(ZMQ_LINGER,0) &&
           IntOption(ZMQ_IMMEDIATE,1) &&
           IntOption(ZMQ_RCVTIMEO,0) &&
           IntOption(ZMQ_SNDTIMEO,0) &&
           IntOption(ZMQ_SNDHWM,1000) &&
           IntOption(ZMQ_RCVHWM,1000) &&
           IntOption(ZMQ_RECONNECT_IVL,500) &&
           IntOption(ZMQ_RECONNECT_IVL_MAX,5000) &&
           BytesOption(ZMQ_ROUTING_ID,identity,StringLen(identity));
   if(ok && server_key!="")
     {
      string pub=public_key;
      string sec=secret_key;
      if(pub=="" || sec=="")
        {
         // no key pair of its own: a new one for this connection; the bridge checks only its own key
         uchar pub_bytes[];
         uchar sec_bytes[];
         ArrayResize(pub_bytes,ZMQ_Z85_KEY_CHARS+1);
         ArrayResize(sec_bytes,ZMQ_Z85_KEY_CHARS+1);
         if(zmq_curve_keypair(pub_bytes,sec_bytes)!=0)
           {
            m_errno=zmq_errno();
            problem="zmq_curve_keypair failed: "+LastError();
            Close(0);
            return(false);
           }
         pub=CharArrayToString(pub_bytes,0,ZMQ_Z85_KEY_CHARS,CP_ACP);
         sec=CharArrayToString(sec_bytes,0,ZMQ_Z85_KEY_CHARS,CP_ACP);
        }
      // zmq_setsockopt takes a Z85 key as 40 characters and the terminating zero: 41 bytes
      ok=BytesOption(ZMQ_CURVE_SERVERKEY,server_key,ZMQ_Z85_KEY_CHARS+1) &&
         BytesOption(ZMQ_CURVE_PUBLICKEY,pub,ZMQ_Z85_KEY_CHARS+1) &&
         BytesOption(ZMQ_CURVE_SECRETKEY,sec,ZMQ_Z85_KEY_CHARS+1);
     }
   if(!ok)
     {
      problem="zmq_setsockopt failed: "+LastError();
      Close(0);
      return(false);
     }
   uchar address[];
   ZmqCString(endpoint,address);
   if(zmq_connect(m_socket,address)!=0)
     {
      m_errno=zmq_errno();
      problem="zmq_connect to "+endpoint+" failed: "+LastError();
      Close(0);
      return(false);
     }
   return(true);
  }

//--- close the socket; linger_ms > 0 gives messages already queued (a BYE) that long to leave
void CZmqDealer::Close(const int linger_ms)
  {
   if(m_socket==0)
      return;
   if(linger_ms>0)
      IntOption(ZMQ_LINGER,linger_ms);
   zmq_close(m_socket);
   m_socket=0;
  }

//--- the socket and the context: what OnDeinit must do before the EA leaves
void CZmqDealer::Shutdown(void)
  {
   Close(0);
   if(m_context!=0)
     {
      // returns once every socket is closed and its linger has run out
      zmq_ctx_term(m_context);
      m_context=0;
     }
  }

//--- one frame of UTF-8 JSON, waiting at most timeout_ms for a live connection to take it
bool CZmqDealer::Send(const string text,const int timeout_ms)
  {
   if(m_socket==0)
      return(false);
   // the frame is the UTF-8 bytes without the terminating zero StringToCharArray appends
   int n=StringToCharArray(text,m_out,0,WHOLE_ARRAY,CP_UTF8);
   if(n>0 && m_out[n-1]==0)
      n--;
   if(n<=0)
     {
      m_errno=0;
      return(false);
     }
   int flags=0;
   if(timeout_ms<=0)
      flags=ZMQ_DONTWAIT;
   else if(!IntOption(ZMQ_SNDTIMEO,timeout_ms))
      return(false);
   if(zmq_send(m_socket,m_out,(ulong)n,flags)<0)
     {
      m_errno=zmq_errno();
      return(false);
     }
   return(true);
  }

//+------------------------------------------------------------------+
//| One frame from the bridge, waiting at most timeout_ms.           |
//| ZMQ_GOT_MESSAGE with the text, ZMQ_GOT_NOTHING when none came in |
//| time, ZMQ_GOT_ERROR on a socket error or a frame too large.      |
//+------------------------------------------------------------------+
int CZmqDealer::Receive(string &text,const int timeout_ms)
  {
   text="";
   if(m_socket==0)
      return(ZMQ_GOT_ERROR);
   int flags=0;
   if(timeout_ms<=0)
      flags=ZMQ_DONTWAIT;
   else if(!IntOption(ZMQ_RCVTIMEO,timeout_ms))
      return(ZMQ_GOT_ERROR);
   // a bridge that ever prefixes an empty delimiter frame: skip it, the payload follows at once
   for(int frames=0; frames<2; frames++)
     {
      int n=zmq_recv(m_socket,m_buffer,(ulong)ZMQ_RECEIVE_BUFFER,flags);
      if(n<0)
        {
         m_errno=zmq_errno();
         if(m_errno==ZMQ_EAGAIN)
            return(ZMQ_GOT_NOTHING);
         return(ZMQ_GOT_ERROR);
        }
      if(n>ZMQ_RECEIVE_BUFFER)
        {
         // zmq_recv truncates and reports the full size: a frame this large is not a bridge reply
         m_errno=0;
         return(ZMQ_GOT_ERROR);
        }
      if(n==0)
         continue;
      text=CharArrayToString(m_buffer,0,n,CP_UTF8);
      return(ZMQ_GOT_MESSAGE);
     }
   return(ZMQ_GOT_NOTHING);
  }

string CZmqDealer::LastError(void) const
  {
   if(m_errno==ZMQ_EAGAIN)
      return("no connection to the bridge (EAGAIN)");
   if(m_errno==ZMQ_ETERM)
      return("the ZeroMQ context was terminated (ETERM)");
   return("zmq errno "+IntegerToString(m_errno));
  }

#endif // MT5B_ZMQ_MQH
