//+------------------------------------------------------------------+
//| MT5Bridge/Session.mqh                                            |
//| One chart's conversation with the bridge: HELLO and WELCOME,     |
//| the warm-up, each TICK in lock-step with a deadline, RESULT, DEAL|
//| and FAILSAFE messages queued while the bridge cannot hear them,  |
//| CLOCK when the server's UTC offset changes, heartbeats, the      |
//| silence failsafe, reconnects with back-off, BYE.                 |
//|                                                                  |
//| A RESULT is kept after it is sent until the bridge has answered  |
//| a later message on the same connection (frames of one connection |
//| are read in order): a socket closed with LINGER 0 may drop what  |
//| it had queued, so whatever was not acknowledged is sent again    |
//| after the next WELCOME (the bridge takes a RESULT it already has |
//| as a duplicate). A DEAL is kept the same way, and one refused    |
//| as NOT_INTRODUCED (a restarted bridge, reached by the socket's   |
//| own reconnect before this chart said HELLO again) goes again     |
//| after the next WELCOME instead of being dropped. After every     |
//| WELCOME the chart also sends its symbol's deals again from the   |
//| account history since the point the bridge is known to have all  |
//| deals before (DealResend.mqh), a few per timer event; the bridge |
//| ignores a deal it already has.                                   |
//|                                                                  |
//| States: OFFLINE (no socket, waiting for the next attempt),       |
//| HELLO_SENT (waiting for WELCOME), READY (welcomed and warmed up).|
//| Every message sent carries the next seq; a reply is matched to   |
//| the TICK it answers by reply_to, and anything else is late.      |
//+------------------------------------------------------------------+
#ifndef MT5B_SESSION_MQH
#define MT5B_SESSION_MQH

#include "Protocol.mqh"
#include "Json.mqh"
#include "Messages.mqh"
#include "Zmq.mqh"
#include "Terminal.mqh"
#include "DealResend.mqh"
#include "Log.mqh"

#define STATE_OFFLINE      0
#define STATE_HELLO_SENT   1
#define STATE_READY        2

//--- what a TICK got
#define TICK_NOT_SENT      0   // not welcomed, no usable quote, or time would go backwards
#define TICK_NO_REPLY      1   // nothing in time: HOLD
#define TICK_REFUSED       2   // an ERROR answered it: HOLD
#define TICK_COMMAND       3   // the COMMAND answering it

//--- what one frame from the bridge was
#define FRAME_OTHER        0
#define FRAME_COMMAND      1   // the COMMAND awaited
#define FRAME_ERROR        2   // an ERROR for the request awaited
#define FRAME_WELCOME      3   // the WELCOME awaited

#define OUTBOX_LIMIT       5000
#define FIRST_BACKOFF_MS   500
#define SEND_TIMEOUT_MS    200
#define WARMUP_SEND_MS     500
#define WARMUP_FRAMES      4
#define WARMUP_TRIES       3    // timer events to wait for history the terminal is still loading
//--- where a RESULT stands: not sent yet, or sent as this seq and not yet acknowledged
#define RESULT_UNSENT      (-1)
#define RESULT_AFTER_RECONNECT (-2)  // the bridge could not take it now (INTERNAL_ERROR): again after reconnect
//--- where a DEAL stands, the same way
#define DEAL_UNSENT        (-1)
#define DEAL_AFTER_RECONNECT (-2)
#define BYE_LINGER_MS      500
#define SENT_MEMORY        64

class CBridgeSession
  {
private:
   CZmqDealer        m_socket;
   CJsonWriter       m_writer;
   CJsonReader       m_reader;
   //--- settings
   string            m_endpoint;
   string            m_symbol;
   string            m_ea_version;
   long              m_magic;
   double            m_initial_balance;
   string            m_curve_server_key;
   string            m_curve_public_key;
   string            m_curve_secret_key;
   int               m_hello_timeout_ms;
   int               m_backoff_max_ms;
   int               m_silence_limit_ms;   // the trader's own limit; the stricter of it and WELCOME's applies
   int               m_warmup_bars[4];
   //--- timings in force (the inputs until WELCOME hands over the bridge's)
   int               m_deadline_ms;
   int               m_heartbeat_ms;
   int               m_silence_ms;
   double            m_equity_floor;
   int               m_max_requests;
   bool              m_welcomed_once;
   string            m_journal_id;
   int               m_warmup_next;        // timeframe the warm-up sends next; WARMUP_FRAMES = done
   int               m_warmup_tries;
   long              m_offset_s;           // the server's UTC offset now (the EA checks it)
   long              m_offset_told;        // the offset the bridge was last told (HELLO or CLOCK)
   //--- state
   int               m_state;
   long              m_seq;
   long              m_hello_seq;
   ulong             m_hello_sent_ms;
   ulong             m_next_attempt_ms;
   int               m_backoff_ms;
   ulong             m_last_sent_ms;
   ulong             m_last_heard_ms;
   ulong             m_awaiting_since_ms;  // first request since the bridge was last heard; 0 = none
   long              m_last_tick_msc;
   long              m_round_trip_us;
   bool              m_silent;             // BRIDGE_SILENT reported, BRIDGE_BACK not yet
   ulong             m_silent_since_ms;
   int               m_held_while_silent;
   string            m_status;             // for the chart
   string            m_waiting_for;        // why no HELLO was sent yet
   bool              m_unreachable_logged; // "no bridge at ..." said once until the next WELCOME
   //--- counters for the chart and the log
   long              m_ticks_sent;
   long              m_holds_by_timeout;
   long              m_holds_by_error;
   long              m_late_replies;
   long              m_sent_seq[SENT_MEMORY];
   string            m_sent_type[SENT_MEMORY];
   long              m_welcome_count;
   //--- messages waiting for the bridge
   SResultInfo       m_results[];
   long              m_result_seq[];       // RESULT_UNSENT, RESULT_AFTER_RECONNECT or the seq it was sent as
   int               m_result_count;
   SDealInfo         m_deals[];
   long              m_deal_seq[];         // DEAL_UNSENT, DEAL_AFTER_RECONNECT or the seq it was sent as
   int               m_deal_count;
   //--- the deals sent again after a WELCOME
   long              m_deals_trusted_msc;  // the bridge has every deal of this symbol stamped before (0: unknown)
   bool              m_resend_due;         // a WELCOME came: the history is to be read
   ulong             m_resend_tickets[];   // what the history held, sent RESEND_DEALS_PER_STEP at a time
   int               m_resend_count;
   int               m_resend_next;
   long              m_resend_read_msc;    // when the history was read
   long              m_trust_candidate_msc;// becomes trusted once everything queued has been acknowledged
   SFailsafeInfo     m_failsafes[];
   int               m_failsafe_count;
   SCommand          m_late[];
   int               m_late_count;

   long              NextSeq(void) { long seq=m_seq; m_seq++; return(seq); }
   bool              SendFrame(const string frame,const long seq,const string type,const int timeout_ms,
                               const bool answered);
   string            SentType(const long seq) const;
   void              Heard(void);
   void              Disconnect(const string why,const int backoff_ms);
   void              StartHello(void);
   bool              AwaitWelcome(const int timeout_ms);
   void              ApplyWelcome(SWelcome &w);
   void              WarmupStep(void);
   void              WarmupDone(void);
   bool              SendWarmup(const string name,MqlRates &rates[],const int copied,const int bars);
   void              Acknowledge(const long reply_to);
   void              ResultRefused(const long seq,const string code);
   void              ResendStep(void);
   void              ReadResendHistory(void);
   bool              HasDeal(const long deal) const;
   void              TellClock(void);
   int               Classify(const string text,const long awaited_seq,const bool awaiting_welcome,
                              SCommand &command,SWelcome &welcome,SErrorReply &error);
   void              LateCommand(const SCommand &command);
   void              CheckSilence(void);
   void              SendHeartbeat(void);
   void              Drain(void);

public:
                     CBridgeSession(void);
   void              Configure(const string endpoint,const string symbol,const string ea_version,const long magic,
                               const double initial_balance,const int deadline_ms,const int heartbeat_ms,
                               const int silence_ms,const int max_requests,const int hello_timeout_ms,
                               const int backoff_max_ms,const string curve_server_key,
                               const string curve_public_key,const string curve_secret_key);
   void              SetWarmupBars(const int m1,const int m5,const int m15,const int h1);
   bool              Start(string &problem);
   void              Connect(const int wait_ms);
   void              Service(void);
   int               Tick(const STickInfo &tick,const SPositionInfo &positions[],const int count,SCommand &command);
   void              NoteHeldTick(void) { if(m_silent) m_held_while_silent++; }
   void              SetServerUtcOffset(const long offset_s);
   void              Reset(const bool keep_outbox);
   bool              TakeLateCommand(SCommand &command);
   void              QueueResult(const SResultInfo &r);
   void              QueueDeal(const SDealInfo &d);
   void              QueueFailsafe(const string kind,const string detail);
   void              Flush(void);
   void              Bye(const string reason);
   void              Shutdown(void);
   //--- what the EA and the chart need to know
   bool              IsReady(void) const { return(m_state==STATE_READY && m_warmup_next>=WARMUP_FRAMES); }
   string            JournalId(void) const { return(m_journal_id); }
   bool              IsSilent(void) const { return(m_silent); }
   bool              WasWelcomed(void) const { return(m_welcomed_once); }
   long              WelcomeCount(void) const { return(m_welcome_count); }
   long              RoundTripUs(void) const { return(m_round_trip_us); }
   double            BridgeEquityFloor(void) const { return(m_equity_floor); }
   int               MaxRequestsPerMinute(void) const { return(m_max_requests); }
   int               DeadlineMs(void) const { return(m_deadline_ms); }
   int               SilenceMs(void) const { return(m_silence_ms); }
   int               Pending(void) const { return(m_result_count+m_deal_count+m_failsafe_count); }
   string            Status(void) const { return(m_status); }
   ulong             LastHeardMs(void) const { return(m_last_heard_ms); }
   long              TicksSent(void) const { return(m_ticks_sent); }
   long              HoldsByTimeout(void) const { return(m_holds_by_timeout); }
   long              HoldsByError(void) const { return(m_holds_by_error); }
   long              LateReplies(void) const { return(m_late_replies); }
  };

CBridgeSession::CBridgeSession(void)
  {
   m_endpoint="";
   m_symbol="";
   m_ea_version="";
   m_magic=0;
   m_initial_balance=0;
   m_curve_server_key="";
   m_curve_public_key="";
   m_curve_secret_key="";
   m_hello_timeout_ms=3000;
   m_backoff_max_ms=30000;
   m_silence_limit_ms=30000;
   m_deadline_ms=250;
   m_heartbeat_ms=1000;
   m_silence_ms=30000;
   m_equity_floor=0;
   m_max_requests=30;
   m_welcomed_once=false;
   m_journal_id="";
   m_warmup_next=WARMUP_FRAMES;
   m_warmup_tries=0;
   m_offset_s=0;
   m_offset_told=0;
   m_state=STATE_OFFLINE;
   m_seq=0;
   m_hello_seq=-1;
   m_hello_sent_ms=0;
   m_next_attempt_ms=0;
   m_backoff_ms=FIRST_BACKOFF_MS;
   m_last_sent_ms=0;
   m_last_heard_ms=0;
   m_awaiting_since_ms=0;
   m_last_tick_msc=0;
   m_round_trip_us=0;
   m_silent=false;
   m_silent_since_ms=0;
   m_held_while_silent=0;
   m_status="not connected";
   m_waiting_for="";
   m_unreachable_logged=false;
   m_ticks_sent=0;
   m_holds_by_timeout=0;
   m_holds_by_error=0;
   m_late_replies=0;
   m_result_count=0;
   m_deal_count=0;
   m_deals_trusted_msc=0;
   m_resend_due=false;
   m_resend_count=0;
   m_resend_next=0;
   m_resend_read_msc=0;
   m_trust_candidate_msc=0;
   m_failsafe_count=0;
   m_late_count=0;
   for(int i=0; i<4; i++)
      m_warmup_bars[i]=0;
   for(int i=0; i<SENT_MEMORY; i++)
     {
      m_sent_seq[i]=-1;
      m_sent_type[i]="";
     }
   m_welcome_count=0;
  }

//+------------------------------------------------------------------+
//| Re-initialisation without unloading (another chart symbol, other |
//| inputs, another account): the terminal keeps the EA's globals,   |
//| so the session starts again from nothing. What waits to be sent  |
//| is kept for the same account (its bridge still needs it) and     |
//| dropped for another one (it would be refused as FORBIDDEN).      |
//+------------------------------------------------------------------+
void CBridgeSession::Reset(const bool keep_outbox)
  {
   m_socket.Shutdown();
   m_deadline_ms=250;
   m_heartbeat_ms=1000;
   m_equity_floor=0;
   m_welcomed_once=false;
   m_journal_id="";
   m_warmup_next=WARMUP_FRAMES;
   m_warmup_tries=0;
   m_state=STATE_OFFLINE;
   m_hello_seq=-1;
   m_next_attempt_ms=0;
   m_backoff_ms=FIRST_BACKOFF_MS;
   m_awaiting_since_ms=0;
   m_last_tick_msc=0;
   m_round_trip_us=0;
   m_silent=false;
   m_held_while_silent=0;
   m_status="not connected";
   m_waiting_for="";
   m_unreachable_logged=false;
   m_late_count=0;
   for(int i=0; i<m_result_count; i++)
      m_result_seq[i]=RESULT_UNSENT;
   for(int i=0; i<m_deal_count; i++)
      m_deal_seq[i]=DEAL_UNSENT;
   m_resend_due=false;
   m_resend_count=0;
   m_resend_next=0;
   m_trust_candidate_msc=0;
   if(!keep_outbox)
     {
      // another account's deals say nothing of this one's
      m_deals_trusted_msc=0;
      for(int i=0; i<m_result_count; i++)
         LogWarning("RESULT of command "+IntegerToString(m_results[i].command_id)+" dropped: the account changed");
      m_result_count=0;
      m_deal_count=0;
      m_failsafe_count=0;
     }
  }

void CBridgeSession::Configure(const string endpoint,const string symbol,const string ea_version,const long magic,
                               const double initial_balance,const int deadline_ms,const int heartbeat_ms,
                               const int silence_ms,const int max_requests,const int hello_timeout_ms,
                               const int backoff_max_ms,const string curve_server_key,
                               const string curve_public_key,const string curve_secret_key)
  {
   m_endpoint=endpoint;
   m_symbol=symbol;
   m_ea_version=ea_version;
   m_magic=magic;
   m_initial_balance=initial_balance;
   m_deadline_ms=deadline_ms;
   m_heartbeat_ms=heartbeat_ms;
   m_silence_limit_ms=silence_ms;
   m_silence_ms=silence_ms;
   m_max_requests=max_requests;
   m_hello_timeout_ms=hello_timeout_ms;
   m_backoff_max_ms=backoff_max_ms;
   m_curve_server_key=curve_server_key;
   m_curve_public_key=curve_public_key;
   m_curve_secret_key=curve_secret_key;
  }

void CBridgeSession::SetWarmupBars(const int m1,const int m5,const int m15,const int h1)
  {
   m_warmup_bars[0]=m1;
   m_warmup_bars[1]=m5;
   m_warmup_bars[2]=m15;
   m_warmup_bars[3]=h1;
  }

bool CBridgeSession::Start(string &problem)
  {
   if(!m_socket.Init())
     {
      problem="cannot create a ZeroMQ context: "+m_socket.LastError();
      return(false);
     }
   return(true);
  }

//+------------------------------------------------------------------+
//| One frame out. A TICK (answered=true) starts the silence clock   |
//| if it is not running; so does any send that fails, since with    |
//| IMMEDIATE a failed send means there is no live connection.       |
//| Messages the bridge does not answer (RESULT, DEAL, HEARTBEAT...) |
//| must not start it, or a quiet weekend would look like silence.   |
//+------------------------------------------------------------------+
bool CBridgeSession::SendFrame(const string frame,const long seq,const string type,const int timeout_ms,
                               const bool answered)
  {
   ulong now=GetTickCount64();
   bool ok=m_socket.Send(frame,timeout_ms);
   if((answered || !ok) && m_awaiting_since_ms==0 && m_state==STATE_READY)
      m_awaiting_since_ms=now;
   if(!ok)
     {
      LogDebug("not sent ("+m_socket.LastError()+"): "+StringSubstr(frame,0,200));
      return(false);
     }
   m_last_sent_ms=now;
   // what each recent seq was, so a refusal can be reported by the message it refused
   int slot=(int)(seq%SENT_MEMORY);
   m_sent_seq[slot]=seq;
   m_sent_type[slot]=type;
   if(LogDebugOn())
      LogDebug("sent "+StringSubstr(frame,0,400));
   return(true);
  }

//--- the type of a message sent lately, by its seq ("message" when it is too old to remember)
string CBridgeSession::SentType(const long seq) const
  {
   if(seq<0)
      return("a message");
   int slot=(int)(seq%SENT_MEMORY);
   if(m_sent_seq[slot]!=seq)
      return("a message");
   return(m_sent_type[slot]);
  }

//--- anything from the bridge: it is alive
void CBridgeSession::Heard(void)
  {
   m_last_heard_ms=GetTickCount64();
   m_awaiting_since_ms=0;
  }

//--- drop the socket and try again after a back-off that doubles up to the maximum
void CBridgeSession::Disconnect(const string why,const int backoff_ms)
  {
   m_socket.Close(0);
   m_state=STATE_OFFLINE;
   m_awaiting_since_ms=0;
   m_warmup_next=WARMUP_FRAMES;
   // LINGER 0 may have dropped what the socket still held: every unacknowledged RESULT goes again
   for(int i=0; i<m_result_count; i++)
      m_result_seq[i]=RESULT_UNSENT;
   // ... and every unacknowledged DEAL, a NOT_INTRODUCED one included (the bridge restarted)
   for(int i=0; i<m_deal_count; i++)
      m_deal_seq[i]=DEAL_UNSENT;
   // a re-send cut short proves nothing: the next WELCOME starts again from the trusted point
   m_resend_due=false;
   m_resend_count=0;
   m_resend_next=0;
   m_trust_candidate_msc=0;
   int wait=backoff_ms;
   if(wait<=0)
     {
      wait=m_backoff_ms;
      m_backoff_ms=m_backoff_ms*2;
      if(m_backoff_ms>m_backoff_max_ms)
         m_backoff_ms=m_backoff_max_ms;
     }
   m_next_attempt_ms=GetTickCount64()+(ulong)wait;
   m_status=why+"; next attempt in "+DoubleToString(wait/1000.0,1)+" s";
  }

//+------------------------------------------------------------------+
//| A fresh socket and a HELLO, once the account and the symbol can  |
//| be described. The socket is new on every attempt (the "lazy      |
//| pirate" of the ZeroMQ guide): nothing queued for a bridge that   |
//| went away is delivered to the next one.                          |
//+------------------------------------------------------------------+
void CBridgeSession::StartHello(void)
  {
   string why="";
   if(!AccountReady(why) || !SymbolReady(m_symbol,why))
     {
      if(why!=m_waiting_for)
         LogInfo("waiting before introducing the chart to the bridge: "+why);
      m_waiting_for=why;
      m_status="waiting: "+why;
      m_next_attempt_ms=GetTickCount64()+1000;
      return;
     }
   m_waiting_for="";
   string identity=IntegerToString(AccountInfoInteger(ACCOUNT_LOGIN))+"-"+m_symbol+"-"+IntegerToString(ChartID());
   string problem="";
   if(!m_socket.Open(m_endpoint,identity,m_curve_server_key,m_curve_public_key,m_curve_secret_key,problem))
     {
      LogError("cannot open the connection to the bridge: "+problem);
      Disconnect("connection failed: "+problem,0);
      return;
     }
   SHelloInfo hello;
   CollectHello(hello,m_symbol,m_ea_version,m_magic,m_initial_balance,m_offset_s);
   long seq=NextSeq();
   string frame=BuildHello(m_writer,seq,hello);
   if(m_writer.BadNumbers()>0)
     {
      // a NaN sent as 0 would be a guess; the symbol's specification is probably still loading
      LogWarning("HELLO not sent: a value of the account or the symbol is not a finite number yet");
      Disconnect("waiting for the account and symbol values",0);
      return;
     }
   m_offset_told=m_offset_s;
   if(!SendFrame(frame,seq,MT5B_MSG_HELLO,SEND_TIMEOUT_MS,true))
     {
      Disconnect("no bridge at "+m_endpoint+" ("+m_socket.LastError()+")",0);
      if(!m_unreachable_logged)
         LogWarning(m_status+"; is `mt5bridge serve` running there? (retrying quietly)");
      m_unreachable_logged=true;
      return;
     }
   m_hello_seq=seq;
   m_hello_sent_ms=GetTickCount64();
   m_state=STATE_HELLO_SENT;
   m_status="HELLO sent to "+m_endpoint+", waiting for WELCOME";
   LogDebug(m_status);
  }

//+------------------------------------------------------------------+
//| Sorts one frame from the bridge. The COMMAND or ERROR answering  |
//| awaited_seq (and the WELCOME answering the HELLO when            |
//| awaiting_welcome) is handed back; everything else is dealt with  |
//| here: late commands are dropped, refusals of other messages are  |
//| logged, NOT_INTRODUCED (a restarted bridge) sends a new HELLO.   |
//+------------------------------------------------------------------+
int CBridgeSession::Classify(const string text,const long awaited_seq,const bool awaiting_welcome,
                             SCommand &command,SWelcome &welcome,SErrorReply &error)
  {
   if(LogDebugOn())
      LogDebug("received "+StringSubstr(text,0,400));
   if(!m_reader.Parse(text))
     {
      LogError("unreadable message from the bridge ("+m_reader.Error()+"): "+StringSubstr(text,0,200));
      return(FRAME_OTHER);
     }
   string type="";
   long reply_to=-1;
   string problem="";
   if(!ReadReplyHeader(m_reader,type,reply_to,problem))
     {
      LogError("message from the bridge without type or reply_to ("+problem+")");
      return(FRAME_OTHER);
     }
   if(type==MT5B_MSG_COMMAND && m_state==STATE_READY)
      Acknowledge(reply_to);
   if(type==MT5B_MSG_COMMAND)
     {
      if(!ParseCommand(m_reader,command,problem))
        {
         LogError("unreadable COMMAND from the bridge, not executed: "+problem);
         long command_id=0;
         // a readable id still gets its RESULT, so the bridge frees the command's risk at once
         if(ReadCommandId(m_reader,command_id) && command_id>MT5B_HOLD_COMMAND_ID)
           {
            SResultInfo r;
            r.command_id=command_id;
            r.outcome=MT5B_OUTCOME_REFUSED;
            r.retcode=TRADE_RETCODE_INVALID;
            r.ticket=0;
            r.price=0;
            r.volume=0;
            r.sl=0;
            r.tp=0;
            r.text="the EA could not read the command ("+problem+"): not executed";
            r.time_msc=ServerTimeMsc();
            r.digits=0;
            QueueResult(r);
           }
         return(FRAME_OTHER);
        }
      if(awaited_seq>=0 && command.reply_to==awaited_seq)
         return(FRAME_COMMAND);
      LateCommand(command);
      return(FRAME_OTHER);
     }
   if(type==MT5B_MSG_ERROR)
     {
      if(!ParseError(m_reader,error,problem))
        {
         LogError("unreadable ERROR from the bridge: "+problem);
         return(FRAME_OTHER);
        }
      bool answers_hello=(awaiting_welcome && error.reply_to==m_hello_seq);
      if(!answers_hello && error.code==MT5B_ERR_NOT_INTRODUCED && m_state==STATE_READY)
        {
         // the bridge restarted and no longer knows this chart: introduce it again
         LogWarning("the bridge does not know this chart any more (it restarted?): sending HELLO again");
         Disconnect("re-introducing the chart",FIRST_BACKOFF_MS);
         m_next_attempt_ms=0;
        }
      else if(m_state==STATE_READY)
        {
         // an answer to a later message: what was sent before it has been read
         ResultRefused(error.reply_to,error.code);
         Acknowledge(error.reply_to);
        }
      if(answers_hello || (awaited_seq>=0 && error.reply_to==awaited_seq))
         return(FRAME_ERROR);
      LogWarning("the bridge refused "+SentType(error.reply_to)+" seq "+IntegerToString(error.reply_to)+": "+
                 error.code+": "+error.message);
      return(FRAME_OTHER);
     }
   if(type==MT5B_MSG_WELCOME)
     {
      if(!awaiting_welcome || reply_to!=m_hello_seq)
        {
         LogDebug("WELCOME to an earlier HELLO ignored");
         return(FRAME_OTHER);
        }
      if(!ParseWelcome(m_reader,welcome,problem))
        {
         error.reply_to=reply_to;
         error.code="";
         error.message="unusable WELCOME: "+problem;
         return(FRAME_ERROR);
        }
      return(FRAME_WELCOME);
     }
   LogWarning("message of unknown type '"+type+"' from the bridge ignored");
   return(FRAME_OTHER);
  }

//+------------------------------------------------------------------+
//| A COMMAND that answers an earlier TICK arrived after its         |
//| deadline: dropped, never executed. A non-HOLD one is kept for    |
//| the EA, which answers it with its one RESULT (refused), so the   |
//| bridge stops counting its risk.                                  |
//+------------------------------------------------------------------+
void CBridgeSession::LateCommand(const SCommand &command)
  {
   m_late_replies++;
   if(command.action==MT5B_ACTION_HOLD)
     {
      LogDebug("late HOLD for seq "+IntegerToString(command.reply_to)+" dropped");
      return;
     }
   LogWarning("COMMAND "+IntegerToString(command.command_id)+" ("+command.action+") answered seq "+
              IntegerToString(command.reply_to)+" after its deadline of "+IntegerToString(m_deadline_ms)+
              " ms: dropped, not executed");
   // the EA answers it (TakeLateCommand), where it knows which command ids it has acted on
   if(m_late_count>=OUTBOX_LIMIT)
      return;
   ArrayResize(m_late,m_late_count+1,8);
   m_late[m_late_count]=command;
   m_late_count++;
  }

//--- the next late non-HOLD command to answer; false when there is none
bool CBridgeSession::TakeLateCommand(SCommand &command)
  {
   if(m_late_count==0)
      return(false);
   command=m_late[0];
   for(int i=1; i<m_late_count; i++)
      m_late[i-1]=m_late[i];
   m_late_count--;
   return(true);
  }

//--- waits up to timeout_ms (0: only what has arrived) for the WELCOME answering the HELLO
bool CBridgeSession::AwaitWelcome(const int timeout_ms)
  {
   ulong until=GetTickCount64()+(ulong)timeout_ms;
   while(m_state==STATE_HELLO_SENT)
     {
      ulong now=GetTickCount64();
      int wait=0;
      if(until>now)
         wait=(int)(until-now);
      string text="";
      int got=m_socket.Receive(text,wait);
      if(got==ZMQ_GOT_ERROR)
        {
         Disconnect("connection error: "+m_socket.LastError(),0);
         return(false);
        }
      if(got==ZMQ_GOT_NOTHING)
         return(false);
      Heard();
      SCommand command;
      SWelcome welcome;
      SErrorReply error;
      int kind=Classify(text,-1,true,command,welcome,error);
      if(kind==FRAME_WELCOME)
        {
         ApplyWelcome(welcome);
         return(true);
        }
      if(kind==FRAME_ERROR)
        {
         // a refused HELLO stays refused until something changes: wait long before asking again
         LogError("the bridge refused this chart: "+error.code+" "+error.message);
         Disconnect("refused by the bridge: "+error.code+" "+error.message,m_backoff_max_ms);
         return(false);
        }
     }
   return(false);
  }

//--- the bridge's timings and failsafes, within the EA's own ranges; the warm-up follows step by step
void CBridgeSession::ApplyWelcome(SWelcome &w)
  {
   long asked_deadline=w.deadline_ms;
   long asked_heartbeat=w.heartbeat_ms;
   long asked_silence=w.failsafe_silence_ms;
   if(ClampWelcome(w))
      LogWarning("WELCOME asked for deadline "+IntegerToString(asked_deadline)+" ms, heartbeat "+
                 IntegerToString(asked_heartbeat)+" ms, silence "+IntegerToString(asked_silence)+
                 " ms; the EA keeps to its own ranges and uses "+IntegerToString(w.deadline_ms)+", "+
                 IntegerToString(w.heartbeat_ms)+" and "+IntegerToString(w.failsafe_silence_ms)+" ms");
   m_deadline_ms=(int)w.deadline_ms;
   m_heartbeat_ms=(int)w.heartbeat_ms;
   m_silence_ms=(int)w.failsafe_silence_ms;
   if(m_silence_limit_ms>0 && m_silence_limit_ms<m_silence_ms)
      m_silence_ms=m_silence_limit_ms;
   m_equity_floor=w.equity_floor;
   m_max_requests=(int)w.max_requests_per_minute;
   if(m_journal_id!="" && m_journal_id!=w.journal_id)
      LogWarning("the bridge runs another journal ("+w.journal_id+", was "+m_journal_id+
                 "): its command ids are new ones");
   m_journal_id=w.journal_id;
   m_state=STATE_READY;
   m_welcome_count++;
   m_backoff_ms=FIRST_BACKOFF_MS;
   m_unreachable_logged=false;
   m_last_tick_msc=0;
   m_warmup_next=0;
   m_warmup_tries=0;
   // the previous connection's last DEALs may be lost: after the warm-up the history goes again
   m_resend_due=true;
   m_resend_count=0;
   m_resend_next=0;
   m_trust_candidate_msc=0;
   LogInfo("welcomed by the bridge at "+m_endpoint+" (journal "+m_journal_id+"): deadline "+
           IntegerToString(m_deadline_ms)+" ms, heartbeat "+IntegerToString(m_heartbeat_ms)+" ms, silence failsafe "+
           IntegerToString(m_silence_ms)+" ms, equity floor "+DoubleToString(m_equity_floor,2)+", at most "+
           IntegerToString(m_max_requests)+" trade requests a minute");
   m_status="welcomed by "+m_endpoint+"; sending the warm-up";
  }

//+------------------------------------------------------------------+
//| One timeframe of the warm-up per timer event, so the equity      |
//| guard runs between them. History the terminal is still loading   |
//| is waited for a few timer events, never with a Sleep.            |
//+------------------------------------------------------------------+
void CBridgeSession::WarmupStep(void)
  {
   string names[WARMUP_FRAMES];
   names[0]=MT5B_TF_M1;
   names[1]=MT5B_TF_M5;
   names[2]=MT5B_TF_M15;
   names[3]=MT5B_TF_H1;
   ENUM_TIMEFRAMES frames[WARMUP_FRAMES];
   frames[0]=PERIOD_M1;
   frames[1]=PERIOD_M5;
   frames[2]=PERIOD_M15;
   frames[3]=PERIOD_H1;
   int i=m_warmup_next;
   int bars=m_warmup_bars[i];
   MqlRates rates[];
   int copied=0;
   if(bars>0)
     {
      ResetLastError();
      copied=CopyRates(m_symbol,frames[i],1,bars,rates);
      if(copied<bars && m_warmup_tries<WARMUP_TRIES)
        {
         m_warmup_tries++;
         return;
        }
     }
   m_warmup_tries=0;
   if(!SendWarmup(names[i],rates,copied,bars))
     {
      Disconnect("the bridge went away during the warm-up",0);
      return;
     }
   m_warmup_next++;
   if(m_warmup_next>=WARMUP_FRAMES)
      WarmupDone();
  }

void CBridgeSession::WarmupDone(void)
  {
   if(m_silent)
     {
      double silent_s=(GetTickCount64()-m_silent_since_ms)/1000.0;
      string detail="the bridge answers again after "+DoubleToString(silent_s,1)+" s of silence; "+
                    IntegerToString(m_held_while_silent)+" ticks were held meanwhile";
      LogWarning(detail);
      m_silent=false;
      m_held_while_silent=0;
      QueueFailsafe(MT5B_FAILSAFE_BRIDGE_BACK,detail);
     }
   m_status="connected to "+m_endpoint;
   if(m_welcome_count==1)
      LogInfo("warm-up sent; trading on the bridge's commands");
   Flush();
  }

//+------------------------------------------------------------------+
//| Closed bars of one timeframe as WARMUP chunks, oldest first.     |
//| CopyRates from position 1 leaves out the bar still forming; the  |
//| oldest bar is at index 0 of the array. A bar with a missing or   |
//| non-finite price is left out rather than have the chunk refused. |
//+------------------------------------------------------------------+
bool CBridgeSession::SendWarmup(const string name,MqlRates &rates[],const int copied,const int bars)
  {
   if(bars<=0)
      return(true);
   if(copied<=0)
     {
      LogWarning(name+" warm-up: no history (error "+IntegerToString(GetLastError())+
                 "); the bridge warms up from live ticks");
      return(true);
     }
   MqlRates clean[];
   ArrayResize(clean,copied);
   int n=0;
   for(int i=0; i<copied; i++)
     {
      if(!MathIsValidNumber(rates[i].open) || !MathIsValidNumber(rates[i].high) ||
         !MathIsValidNumber(rates[i].low) || !MathIsValidNumber(rates[i].close))
         continue;
      if(rates[i].open<=0 || rates[i].high<=0 || rates[i].low<=0 || rates[i].close<=0 || rates[i].high<rates[i].low)
         continue;
      if(n>0 && rates[i].time<=clean[n-1].time)
         continue;
      clean[n]=rates[i];
      n++;
     }
   int digits=(int)SymbolInfoInteger(m_symbol,SYMBOL_DIGITS);
   int chunks=(n+MT5B_MAX_WARMUP_BARS-1)/MT5B_MAX_WARMUP_BARS;
   for(int chunk=0; chunk<chunks; chunk++)
     {
      int from=chunk*MT5B_MAX_WARMUP_BARS;
      int count=n-from;
      if(count>MT5B_MAX_WARMUP_BARS)
         count=MT5B_MAX_WARMUP_BARS;
      long seq=NextSeq();
      string frame=BuildWarmup(m_writer,seq,name,chunk,chunks,clean,from,count,digits);
      if(!SendFrame(frame,seq,MT5B_MSG_WARMUP,WARMUP_SEND_MS,false))
         return(false);
     }
   if(n<bars)
      LogInfo(name+" warm-up: "+IntegerToString(n)+" closed bars of the "+IntegerToString(bars)+" asked for");
   else
      LogDebug(name+" warm-up: "+IntegerToString(n)+" bars in "+IntegerToString(chunks)+" chunks");
   return(true);
  }

//+------------------------------------------------------------------+
//| A RESULT sent before a message the bridge has now answered has   |
//| been read: it is no longer kept.                                 |
//+------------------------------------------------------------------+
void CBridgeSession::Acknowledge(const long reply_to)
  {
   int keep=0;
   for(int i=0; i<m_result_count; i++)
     {
      if(m_result_seq[i]>=0 && m_result_seq[i]<=reply_to)
         continue;
      m_results[keep]=m_results[i];
      m_result_seq[keep]=m_result_seq[i];
      keep++;
     }
   m_result_count=keep;
   keep=0;
   for(int i=0; i<m_deal_count; i++)
     {
      if(m_deal_seq[i]>=0 && m_deal_seq[i]<=reply_to)
         continue;
      m_deals[keep]=m_deals[i];
      m_deal_seq[keep]=m_deal_seq[i];
      keep++;
     }
   m_deal_count=keep;
   // the re-send is through and the bridge has read all of it: deals before it are with the bridge
   if(m_trust_candidate_msc>0 && !m_resend_due && m_resend_next>=m_resend_count && m_deal_count==0)
     {
      m_deals_trusted_msc=m_trust_candidate_msc;
      m_trust_candidate_msc=0;
     }
  }

//--- a RESULT the bridge could not take for a fault of its own is sent again after the next reconnect
void CBridgeSession::ResultRefused(const long seq,const string code)
  {
   if(code!=MT5B_ERR_INTERNAL_ERROR)
      return;
   for(int i=0; i<m_result_count; i++)
      if(m_result_seq[i]==seq)
         m_result_seq[i]=RESULT_AFTER_RECONNECT;
   for(int i=0; i<m_deal_count; i++)
      if(m_deal_seq[i]==seq)
         m_deal_seq[i]=DEAL_AFTER_RECONNECT;
  }

//+------------------------------------------------------------------+
//| One step of the re-send after a WELCOME: the first reads which   |
//| deals of this symbol the history holds since the trusted point,  |
//| each later one queues RESEND_DEALS_PER_STEP of them, so no timer |
//| event is held long and the equity guard runs between them.       |
//+------------------------------------------------------------------+
void CBridgeSession::ResendStep(void)
  {
   if(m_resend_due)
     {
      m_resend_due=false;
      ReadResendHistory();
      return;
     }
   int queued=0;
   while(m_resend_next<m_resend_count && queued<RESEND_DEALS_PER_STEP)
     {
      ulong ticket=m_resend_tickets[m_resend_next];
      m_resend_next++;
      if(HasDeal((long)ticket))
         continue;
      SDealInfo d;
      string why="";
      // CollectDeal selects the deal by ticket: another HistorySelect since the read does not matter
      if(CollectDeal(ticket,d,why)!=1)
        {
         LogDebug("not sent again: "+why);
         continue;
        }
      if(d.symbol!=m_symbol)
         continue;
      QueueDeal(d);
      queued++;
     }
   if(m_resend_next>=m_resend_count && m_resend_count>0)
      LogDebug(IntegerToString(m_resend_count)+" deal(s) of "+m_symbol+" sent again after the WELCOME");
  }

//--- the tickets of this symbol's deals since the trusted point, at most RESEND_MAX_DEALS of the newest
void CBridgeSession::ReadResendHistory(void)
  {
   m_resend_count=0;
   m_resend_next=0;
   long now_msc=ServerTimeMsc();
   long from_msc=ResendFromMsc(m_deals_trusted_msc,now_msc);
   // to: a day ahead, so a deal stamped after TimeTradeServer()'s estimate is not missed
   if(!HistorySelect((datetime)(from_msc/1000),(datetime)(now_msc/1000+86400)))
     {
      LogWarning("the deal history could not be read (error "+IntegerToString(GetLastError())+
                 "): deals are not sent again after this WELCOME");
      return;
     }
   int total=HistoryDealsTotal();
   ulong tickets[];
   long times[];
   ArrayResize(tickets,total);
   ArrayResize(times,total);
   int n=0;
   for(int i=0; i<total; i++)
     {
      ulong ticket=HistoryDealGetTicket(i);
      if(ticket==0 || HistoryDealGetString(ticket,DEAL_SYMBOL)!=m_symbol)
         continue;
      tickets[n]=ticket;
      times[n]=HistoryDealGetInteger(ticket,DEAL_TIME_MSC);
      n++;
     }
   int picked[];
   int count=PickDealsToResend(times,n,from_msc,RESEND_MAX_DEALS,picked);
   if(count<n)
      LogWarning(IntegerToString(n)+" deals of "+m_symbol+" since the last point the bridge is known to have; "+
                 "the newest "+IntegerToString(count)+" are sent again");
   ArrayResize(m_resend_tickets,count);
   for(int k=0; k<count; k++)
      m_resend_tickets[k]=tickets[picked[k]];
   m_resend_count=count;
   // trusted once this and everything queued with it has been acknowledged (Acknowledge)
   m_trust_candidate_msc=now_msc;
  }

//--- a deal already waiting for the bridge is not queued twice
bool CBridgeSession::HasDeal(const long deal) const
  {
   for(int i=0; i<m_deal_count; i++)
      if(m_deals[i].deal==deal)
         return(true);
   return(false);
  }

//+------------------------------------------------------------------+
//| The server's UTC offset as the EA checked it. A change (a        |
//| daylight-saving switch) is told at once with CLOCK, before the   |
//| next TICK, so the bridge converts the next times with it.        |
//+------------------------------------------------------------------+
void CBridgeSession::SetServerUtcOffset(const long offset_s)
  {
   m_offset_s=offset_s;
   TellClock();
  }

void CBridgeSession::TellClock(void)
  {
   if(m_state!=STATE_READY || m_offset_s==m_offset_told)
      return;
   long seq=NextSeq();
   if(!SendFrame(BuildClock(m_writer,seq,m_offset_s,ServerTimeMsc()),seq,MT5B_MSG_CLOCK,0,false))
      return;    // told on the next call
   LogInfo("the trade server's UTC offset is now "+IntegerToString(m_offset_s)+" s (was "+
           IntegerToString(m_offset_told)+" s): CLOCK sent");
   m_offset_told=m_offset_s;
  }

//--- OnInit: introduce the chart at once and give WELCOME a moment, so the first tick is usually served
void CBridgeSession::Connect(const int wait_ms)
  {
   StartHello();
   if(m_state==STATE_HELLO_SENT)
      AwaitWelcome(wait_ms);
  }

//+------------------------------------------------------------------+
//| Waiting for the bridge's answer for longer than the silence      |
//| limit: it is silent. Reported (queued), the socket dropped, and  |
//| the chart introduced again when it answers. Until then the EA    |
//| opens nothing - it gets no commands - and its positions keep     |
//| their own stop loss and take profit on the trade server.         |
//+------------------------------------------------------------------+
void CBridgeSession::CheckSilence(void)
  {
   if(m_state!=STATE_READY || m_awaiting_since_ms==0)
      return;
   ulong waited=GetTickCount64()-m_awaiting_since_ms;
   if(waited<(ulong)m_silence_ms)
      return;
   if(!m_silent)
     {
      m_silent=true;
      m_silent_since_ms=m_awaiting_since_ms;
      string detail="no answer from the bridge for "+DoubleToString(waited/1000.0,1)+
                    " s: the EA opens nothing new; open positions keep their own stop loss and take profit";
      LogError(detail);
      QueueFailsafe(MT5B_FAILSAFE_BRIDGE_SILENT,detail);
     }
   Disconnect("the bridge is silent",0);
  }

void CBridgeSession::SendHeartbeat(void)
  {
   long seq=NextSeq();
   SendFrame(BuildHeartbeat(m_writer,seq,ServerTimeMsc()),seq,MT5B_MSG_HEARTBEAT,0,false);
   // a failed heartbeat still counts as sent: the next one comes a full interval later
   m_last_sent_ms=GetTickCount64();
  }

//--- whatever arrived between ticks: late replies, refusals, a restarted bridge
void CBridgeSession::Drain(void)
  {
   for(int i=0; i<100 && m_state==STATE_READY; i++)
     {
      string text="";
      int got=m_socket.Receive(text,0);
      if(got==ZMQ_GOT_NOTHING)
         return;
      if(got==ZMQ_GOT_ERROR)
        {
         Disconnect("connection error: "+m_socket.LastError(),0);
         return;
        }
      Heard();
      SCommand command;
      SWelcome welcome;
      SErrorReply error;
      Classify(text,-1,false,command,welcome,error);
     }
  }

//+------------------------------------------------------------------+
//| OnTimer: connect, wait for WELCOME, read what arrived, watch for |
//| silence, send what waited, keep the chart alive.                 |
//+------------------------------------------------------------------+
void CBridgeSession::Service(void)
  {
   ulong now=GetTickCount64();
   if(m_state==STATE_OFFLINE)
     {
      if(now>=m_next_attempt_ms)
         StartHello();
      return;
     }
   if(m_state==STATE_HELLO_SENT)
     {
      AwaitWelcome(0);
      if(m_state==STATE_HELLO_SENT && now-m_hello_sent_ms>=(ulong)m_hello_timeout_ms)
        {
         LogDebug("no WELCOME within "+IntegerToString(m_hello_timeout_ms)+" ms");
         Disconnect("no answer from the bridge at "+m_endpoint,0);
        }
      return;
     }
   Drain();
   CheckSilence();
   if(m_state!=STATE_READY)
      return;
   if(m_warmup_next<WARMUP_FRAMES)
     {
      WarmupStep();
      return;
     }
   if(m_resend_due || m_resend_next<m_resend_count)
      ResendStep();
   TellClock();
   Flush();
   if(GetTickCount64()-m_last_sent_ms>=(ulong)m_heartbeat_ms)
      SendHeartbeat();
  }

//+------------------------------------------------------------------+
//| One TICK and the wait for its COMMAND, at most the deadline.     |
//| round_trip_us is measured from the send to holding the COMMAND   |
//| (or ERROR) answering it, and is 0 when nothing came in time.     |
//+------------------------------------------------------------------+
int CBridgeSession::Tick(const STickInfo &tick,const SPositionInfo &positions[],const int count,SCommand &command)
  {
   if(!IsReady())
     {
      NoteHeldTick();
      return(TICK_NOT_SENT);
     }
   TellClock();
   // the bridge refuses a tick older than the last one (TIME_BACKWARDS)
   if(tick.time_msc<m_last_tick_msc)
      return(TICK_NOT_SENT);
   long seq=NextSeq();
   string frame=BuildTick(m_writer,seq,tick,positions,count);
   if(m_writer.BadNumbers()>0)
     {
      // never a 0 standing in for a NaN: the tick is not sent (HOLD)
      LogWarning("TICK not sent: "+IntegerToString(m_writer.BadNumbers())+" value(s) not a finite number");
      return(TICK_NOT_SENT);
     }
   ulong started_us=GetMicrosecondCount();
   ulong deadline_us=started_us+(ulong)m_deadline_ms*1000;
   m_ticks_sent++;
   if(!SendFrame(frame,seq,MT5B_MSG_TICK,m_deadline_ms,true))
     {
      m_round_trip_us=0;
      m_holds_by_timeout++;
      CheckSilence();
      return(TICK_NO_REPLY);
     }
   m_last_tick_msc=tick.time_msc;
   while(m_state==STATE_READY)
     {
      ulong now_us=GetMicrosecondCount();
      if(now_us>=deadline_us)
         break;
      int wait_ms=(int)((deadline_us-now_us+999)/1000);
      string text="";
      int got=m_socket.Receive(text,wait_ms);
      if(got==ZMQ_GOT_NOTHING)
         continue;
      if(got==ZMQ_GOT_ERROR)
        {
         Disconnect("connection error: "+m_socket.LastError(),0);
         break;
        }
      Heard();
      SWelcome welcome;
      SErrorReply error;
      int kind=Classify(text,seq,false,command,welcome,error);
      if(kind==FRAME_COMMAND || kind==FRAME_ERROR)
        {
         long elapsed=(long)(GetMicrosecondCount()-started_us);
         if(elapsed<1)
            elapsed=1;
         m_round_trip_us=elapsed;
         if(kind==FRAME_COMMAND)
            return(TICK_COMMAND);
         m_holds_by_error++;
         LogWarning("the bridge refused tick seq "+IntegerToString(seq)+": "+error.code+": "+error.message+" (HOLD)");
         return(TICK_REFUSED);
        }
     }
   m_round_trip_us=0;
   m_holds_by_timeout++;
   LogDebug("no COMMAND for seq "+IntegerToString(seq)+" within "+IntegerToString(m_deadline_ms)+" ms: HOLD");
   CheckSilence();
   return(TICK_NO_REPLY);
  }

void CBridgeSession::QueueResult(const SResultInfo &r)
  {
   if(m_result_count>=OUTBOX_LIMIT)
     {
      LogError("too many RESULTs waiting for the bridge: the RESULT of command "+IntegerToString(r.command_id)+" is dropped");
      return;
     }
   ArrayResize(m_results,m_result_count+1,64);
   ArrayResize(m_result_seq,m_result_count+1,64);
   m_results[m_result_count]=r;
   if(!FiniteResult(m_results[m_result_count]))
      LogError("RESULT of command "+IntegerToString(r.command_id)+": a value was not a finite number; sent as "+
               m_results[m_result_count].outcome);
   m_result_seq[m_result_count]=RESULT_UNSENT;
   m_result_count++;
  }

void CBridgeSession::QueueDeal(const SDealInfo &d)
  {
   if(m_deal_count>=OUTBOX_LIMIT)
     {
      LogWarning("too many DEALs waiting for the bridge: deal #"+IntegerToString(d.deal)+" is not reported");
      return;
     }
   ArrayResize(m_deals,m_deal_count+1,64);
   ArrayResize(m_deal_seq,m_deal_count+1,64);
   m_deals[m_deal_count]=d;
   m_deal_seq[m_deal_count]=DEAL_UNSENT;
   m_deal_count++;
  }

//--- the moment is when the EA acted, not when the bridge hears of it
void CBridgeSession::QueueFailsafe(const string kind,const string detail)
  {
   if(m_failsafe_count>=OUTBOX_LIMIT)
      return;
   ArrayResize(m_failsafes,m_failsafe_count+1,16);
   m_failsafes[m_failsafe_count].kind=kind;
   m_failsafes[m_failsafe_count].time_msc=ServerTimeMsc();
   m_failsafes[m_failsafe_count].detail=detail;
   m_failsafe_count++;
  }

//+------------------------------------------------------------------+
//| Sends what waited, oldest first: failsafes, results, deals. Only |
//| when welcomed; a send that fails leaves the rest for the next    |
//| call (the timer tries every 100 ms).                             |
//+------------------------------------------------------------------+
void CBridgeSession::Flush(void)
  {
   // after the warm-up: the bridge reads the bars before anything else of this session
   if(!IsReady())
      return;
   int sent=0;
   while(sent<m_failsafe_count)
     {
      long seq=NextSeq();
      if(!SendFrame(BuildFailsafe(m_writer,seq,m_failsafes[sent]),seq,MT5B_MSG_FAILSAFE,0,false))
         break;
      sent++;
     }
   for(int i=sent; i<m_failsafe_count; i++)
      m_failsafes[i-sent]=m_failsafes[i];
   m_failsafe_count-=sent;
   if(m_failsafe_count>0)
      return;
   // RESULTs stay until acknowledged (Acknowledge); here the ones not sent on this connection go
   for(int i=0; i<m_result_count; i++)
     {
      if(m_result_seq[i]!=RESULT_UNSENT)
         continue;
      long seq=NextSeq();
      if(!SendFrame(BuildResult(m_writer,seq,m_results[i]),seq,MT5B_MSG_RESULT,0,false))
         return;
      m_result_seq[i]=seq;
     }
   // DEALs too stay until acknowledged: a restarted bridge may refuse one as NOT_INTRODUCED
   int keep=0;
   bool stopped=false;
   for(int i=0; i<m_deal_count; i++)
     {
      if(!stopped && m_deal_seq[i]==DEAL_UNSENT)
        {
         long seq=NextSeq();
         string frame=BuildDeal(m_writer,seq,m_deals[i]);
         if(m_writer.BadNumbers()>0)
           {
            // never a 0 standing in for a NaN: the bridge settles from the positions instead
            LogError("DEAL #"+IntegerToString(m_deals[i].deal)+" not reported: a value is not a finite number");
            continue;
           }
         if(SendFrame(frame,seq,MT5B_MSG_DEAL,0,false))
            m_deal_seq[i]=seq;
         else
            stopped=true;   // the rest on the next call
        }
      m_deals[keep]=m_deals[i];
      m_deal_seq[keep]=m_deal_seq[i];
      keep++;
     }
   m_deal_count=keep;
  }

//--- OnDeinit: a BYE if the bridge knows the chart, given a moment to leave
void CBridgeSession::Bye(const string reason)
  {
   if(m_state==STATE_READY)
     {
      Flush();
      long seq=NextSeq();
      SendFrame(BuildBye(m_writer,seq,reason),seq,MT5B_MSG_BYE,SEND_TIMEOUT_MS,false);
      m_socket.Close(BYE_LINGER_MS);
     }
   m_state=STATE_OFFLINE;
  }

void CBridgeSession::Shutdown(void)
  {
   m_socket.Shutdown();
   m_state=STATE_OFFLINE;
  }

#endif // MT5B_SESSION_MQH
