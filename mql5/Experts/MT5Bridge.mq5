//+------------------------------------------------------------------+
//| MT5Bridge.mq5                                                    |
//| Streams this chart's ticks, the account and its positions to the |
//| mt5bridge process over ZeroMQ and carries out its commands.      |
//| The EA holds no strategy; it owns execution and the failsafes    |
//| that must work when the bridge does not: bridge silence, the     |
//| daily equity floor, a cap on trade requests, and never acting    |
//| on a command twice. Attach it to one chart per symbol, with the  |
//| same magic number everywhere. See mql5/README.md.                |
//+------------------------------------------------------------------+
#property copyright "mt5bridge"
#property version   "1.00"
#property description "Bridge between this chart and the mt5bridge decision engine (ZeroMQ, libzmq.dll)."
#property description "Needs 'Allow DLL imports' and Algo Trading. Install guide: mql5/README.md"

#include <MT5Bridge\Log.mqh>
#include <MT5Bridge\Protocol.mqh>
#include <MT5Bridge\Messages.mqh>
#include <MT5Bridge\Zmq.mqh>
#include <MT5Bridge\Terminal.mqh>
#include <MT5Bridge\TradeMath.mqh>
#include <MT5Bridge\Execution.mqh>
#include <MT5Bridge\ExecutedIds.mqh>
#include <MT5Bridge\EquityGuard.mqh>
#include <MT5Bridge\Session.mqh>

#define EA_VERSION          "1.0.0"
#define TIMER_MS            100
#define HELLO_WAIT_IN_INIT  2000
#define OTHER_SYMBOLS_AFTER 2000   // the guard leaves other charts this long to close their own symbols
#define GUARD_RETRY_MS      5000
#define PENDING_DEAL_LOOKS  50     // a deal not in the history yet is looked for again, every 100 ms
#define EXECUTED_IDS_RETRY_MS 30000
#define CLOCK_CHECK_MS      1000

//--- inputs
input group "Bridge"
input string InpEndpoint            = "tcp://127.0.0.1:5555"; // Bridge endpoint (bridge.endpoint)
input int    InpDeadlineMs          = 250;     // Reply deadline per tick, ms (until WELCOME gives the bridge's)
input int    InpHeartbeatMs         = 1000;    // Heartbeat interval, ms (until WELCOME gives the bridge's)
input int    InpHelloTimeoutMs      = 3000;    // Wait for WELCOME before reconnecting, ms
input int    InpReconnectMaxMs      = 30000;   // Longest pause between reconnect attempts, ms
input group "Trading"
input long   InpMagic               = 20261121; // Magic number: the same on every chart and in bridge.magic
input int    InpDeviationPoints     = 10;      // Largest price deviation accepted, points
input int    InpMaxRetries          = 3;       // Retries of one trade request (requote, timeout...)
input group "Failsafes"
input int    InpSilenceMs           = 30000;   // Bridge silent this long: open nothing new, ms (stricter of this and WELCOME)
input bool   InpEquityGuard         = true;    // Close this EA's positions at the daily equity floor
input double InpInitialBalance      = 0;       // Account's initial balance (0 = unknown: floor from the midnight balance)
input double InpDailyLossPct        = 5.0;     // Daily loss limit, % of the initial balance (FTMO 2-Step: 5)
input double InpMaxLossPct          = 10.0;    // Maximum loss, % of the initial balance (0 = none; needs the initial balance)
input double InpGuardBufferPct      = 0.5;     // Act this much before the limit, % of the initial balance
input int    InpMaxRequestsPerMinute= 30;      // Trade requests per minute on this chart (stricter of this and WELCOME)
input group "Warm-up bars sent at start"
input int    InpWarmupM1            = 3000;    // M1 bars
input int    InpWarmupM5            = 2000;    // M5 bars
input int    InpWarmupM15           = 1000;    // M15 bars
input int    InpWarmupH1            = 1000;    // H1 bars (the H1 EMA200 settles within 1000)
input group "Strategy Tester (TimeGMT is not the real UTC there)"
input int    InpTesterUtcOffsetH    = 2;       // Broker's server time minus UTC outside US summer time, hours
input bool   InpTesterUsSummerTime  = true;    // +1 hour while the US is on summer time (FTMO's servers)
input group "Security (bridge on another machine)"
input string InpCurveServerKey      = "";      // Bridge's CURVE public key (mt5bridge keygen); empty = none
input string InpCurvePublicKey      = "";      // This EA's CURVE public key, from mt5bridge keygen --client (with InpCurveServerKey)
input string InpCurveSecretKey      = "";      // This EA's CURVE secret key, from mt5bridge keygen --client
input group "Log"
input ENUM_BRIDGE_LOG InpLogLevel   = BRIDGE_LOG_INFO; // Detail in the Experts log

//--- the EA's parts
//+------------------------------------------------------------------+
//| The executor with the equity guard between its blocking steps:   |
//| a retry, a pause, each position of CLOSE_ALL.                    |
//+------------------------------------------------------------------+
class CGuardedExecutor : public CCommandExecutor
  {
protected:
   virtual bool      BetweenSteps(const bool opening);
  };

CBridgeSession      g_session;
CGuardedExecutor    g_executor;
CExecutedIds        g_executed;
CServerClock        g_clock;
CEquityGuard        g_guard;
CCommissionCache    g_commissions;
SPositionInfo       g_positions[];
ulong               g_pending_deals[];
int                 g_pending_looks[];
int                 g_pending_count=0;
ulong               g_last_comment_ms=0;
ulong               g_executed_tried_ms=0;
ulong               g_last_guard_close_ms=0;
bool                g_guard_other_symbols_done=false;
bool                g_trading_allowed_said=true;
string              g_last_failsafe="none";
bool                g_guard_running=false;     // the guard's own closes do not call it again
int                 g_last_deinit_reason=-1;   // globals outlive a re-initialisation: what it was
long                g_last_login=0;
ulong               g_last_clock_ms=0;
int                 g_positions_capped=0;      // open positions beyond the TICK cap, last said

//+------------------------------------------------------------------+
//| A problem the trader must act on: Experts log, chart and alert.  |
//+------------------------------------------------------------------+
void Complain(const string text)
  {
   LogError(text);
   Comment("MT5Bridge ",EA_VERSION,": ",text);
   Alert("MT5Bridge ",_Symbol,": ",text);
  }

bool CheckInputs(string &problem)
  {
   if(StringFind(InpEndpoint,"://")<=0)
      problem="InpEndpoint must look like tcp://127.0.0.1:5555";
   else if(InpDeadlineMs<DEADLINE_MS_MIN || InpDeadlineMs>DEADLINE_MS_MAX)
      problem="InpDeadlineMs must be "+IntegerToString(DEADLINE_MS_MIN)+".."+IntegerToString(DEADLINE_MS_MAX);
   else if(InpHeartbeatMs<HEARTBEAT_MS_MIN || InpHeartbeatMs>HEARTBEAT_MS_MAX)
      problem="InpHeartbeatMs must be "+IntegerToString(HEARTBEAT_MS_MIN)+".."+IntegerToString(HEARTBEAT_MS_MAX);
   else if(InpHelloTimeoutMs<500 || InpHelloTimeoutMs>60000)
      problem="InpHelloTimeoutMs must be 500..60000";
   else if(InpReconnectMaxMs<1000 || InpReconnectMaxMs>600000)
      problem="InpReconnectMaxMs must be 1000..600000";
   else if(InpMagic<1 || InpMagic>2147483647)
      problem="InpMagic must be 1..2147483647 and equal bridge.magic";
   else if(InpDeviationPoints<0 || InpDeviationPoints>10000)
      problem="InpDeviationPoints must be 0..10000";
   else if(InpMaxRetries<0 || InpMaxRetries>5)
      problem="InpMaxRetries must be 0..5";
   else if(InpSilenceMs<SILENCE_MS_MIN || InpSilenceMs>SILENCE_MS_MAX)
      problem="InpSilenceMs must be "+IntegerToString(SILENCE_MS_MIN)+".."+IntegerToString(SILENCE_MS_MAX);
   else if(InpTesterUtcOffsetH<-12 || InpTesterUtcOffsetH>14)
      problem="InpTesterUtcOffsetH must be -12..14";
   else if(InpInitialBalance<0)
      problem="InpInitialBalance must be 0 (unknown) or the account's initial balance";
   else if(InpDailyLossPct<=0 || InpDailyLossPct>100)
      problem="InpDailyLossPct must be above 0 and at most 100";
   else if(InpMaxLossPct<0 || InpMaxLossPct>100)
      problem="InpMaxLossPct must be 0 (none) to 100";
   else if(InpGuardBufferPct<0 || InpGuardBufferPct>=InpDailyLossPct ||
           (InpMaxLossPct>0 && InpGuardBufferPct>=InpMaxLossPct))
      problem="InpGuardBufferPct must be 0 or more and below InpDailyLossPct and InpMaxLossPct";
   else if(InpMaxRequestsPerMinute<1 || InpMaxRequestsPerMinute>600)
      problem="InpMaxRequestsPerMinute must be 1..600";
   else if(InpWarmupM1<1000 || InpWarmupM5<1000 || InpWarmupM15<1000 || InpWarmupH1<1000 ||
           InpWarmupM1>50000 || InpWarmupM5>50000 || InpWarmupM15>50000 || InpWarmupH1>50000)
      problem="each InpWarmup value must be 1000..50000 bars (fewer leave the slow features unsettled)";
   else if(InpCurveServerKey!="" && StringLen(InpCurveServerKey)!=ZMQ_Z85_KEY_CHARS)
      problem="InpCurveServerKey must be the 40-character key printed by mt5bridge keygen";
   else if((InpCurvePublicKey=="")!=(InpCurveSecretKey==""))
      problem="give both InpCurvePublicKey and InpCurveSecretKey, or neither";
   else if(InpCurveServerKey!="" && InpCurvePublicKey=="")
      problem="with InpCurveServerKey, give InpCurvePublicKey and InpCurveSecretKey: the pair that "
              "mt5bridge keygen --client NAME printed (the bridge lets in only the client keys it lists)";
   else if(InpCurvePublicKey!="" && (StringLen(InpCurvePublicKey)!=ZMQ_Z85_KEY_CHARS ||
                                     StringLen(InpCurveSecretKey)!=ZMQ_Z85_KEY_CHARS))
      problem="CURVE keys are 40 characters each";
   else
      return(true);
   return(false);
  }

//--- Algo Trading in the terminal and for this EA; said once each time it changes
bool TradingAllowed(string &why)
  {
   if(TerminalInfoInteger(TERMINAL_TRADE_ALLOWED)==0)
      why="Algo Trading is off in the terminal (toolbar button)";
   else if(MQLInfoInteger(MQL_TRADE_ALLOWED)==0)
      why="'Allow Algo Trading' is off in this EA's properties (Common tab)";
   else if(AccountInfoInteger(ACCOUNT_TRADE_ALLOWED)==0)
      why="the trade server does not allow trading on this account (investor login?)";
   else if(AccountInfoInteger(ACCOUNT_TRADE_EXPERT)==0)
      why="the trade server does not allow Expert Advisors to trade on this account";
   else
      return(true);
   return(false);
  }

void WatchTradingAllowed(void)
  {
   string why="";
   bool allowed=TradingAllowed(why);
   if(!allowed && g_trading_allowed_said)
      LogError(why+": commands are refused until it is switched on");
   if(allowed && !g_trading_allowed_said)
      LogInfo("trading is allowed again");
   g_trading_allowed_said=allowed;
  }

//+------------------------------------------------------------------+
//| The executed-ids file of this account and the bridge's journal:  |
//| known once the account is connected and WELCOME named the        |
//| journal. In the common folder, so every terminal on this PC with |
//| the account shares it; in the Strategy Tester the agent's own.   |
//+------------------------------------------------------------------+
bool EnsureExecutedIds(void)
  {
   long login=AccountInfoInteger(ACCOUNT_LOGIN);
   string journal=g_session.JournalId();
   if(login<=0 || journal=="")
      return(false);
   string file=ExecutedIdsFileName(login,journal);
   if(g_executed.IsLoaded() && g_executed.FileName()==file)
      return(true);
   // a file that cannot be read is tried again now and then, not on every timer event
   ulong now=GetTickCount64();
   if(g_executed_tried_ms>0 && now-g_executed_tried_ms<EXECUTED_IDS_RETRY_MS && g_executed.FileName()==file)
      return(false);
   g_executed_tried_ms=now;
   string problem="";
   int common=(MQLInfoInteger(MQL_TESTER)!=0) ? 0 : FILE_COMMON;
   if(!g_executed.Load(file,common,TimeCurrent(),problem))
     {
      LogError("executed command ids: "+problem);
      return(false);
     }
   LogInfo("executed command ids of this account and journal kept in "+
           (common!=0 ? "the common folder's Files\\" : "MQL5\\Files\\")+g_executed.FileName()+" ("+
           IntegerToString(g_executed.Count())+" from the last days)");
   return(true);
  }

void ReportFailsafe(const string kind,const string detail)
  {
   g_last_failsafe=kind+": "+detail;
   g_session.QueueFailsafe(kind,detail);
  }

void RefuseCommand(const SCommand &c,SResultInfo &r,const uint retcode,const string text)
  {
   r.command_id=c.command_id;
   r.outcome=MT5B_OUTCOME_REFUSED;
   r.retcode=retcode;
   r.ticket=0;
   r.price=0;
   r.volume=0;
   r.sl=0;
   r.tp=0;
   r.text=text;
   r.time_msc=ServerTimeMsc();
   r.digits=(int)SymbolInfoInteger(_Symbol,SYMBOL_DIGITS);
  }

void LogResult(const SCommand &c,const SResultInfo &r)
  {
   string line="command "+IntegerToString(c.command_id)+" "+c.action+" "+c.side+" "+DoubleToString(c.volume,2)+" "+
               c.symbol+": "+r.outcome+", retcode "+IntegerToString(r.retcode)+", ticket "+IntegerToString(r.ticket)+", price "+
               DoubleToString(r.price,r.digits)+", volume "+DoubleToString(r.volume,2)+" ("+r.text+")";
   if(IsFilled((uint)r.retcode))
      LogInfo(line);
   else
      LogWarning(line);
  }

//+------------------------------------------------------------------+
//| The equity guard, on every tick and every timer event (equity    |
//| moves with other symbols' positions too). At or below the floor: |
//| this chart's symbol at once; the EA's positions on other symbols |
//| a moment later if their own charts have not closed them; and     |
//| again every few seconds while any remain, until Prague midnight. |
//+------------------------------------------------------------------+
void GuardOnce(void)
  {
   // the Prague day from server time and the checked offset, not from the PC clock alone
   long offset=g_clock.Offset();
   if(g_guard.Refresh((datetime)((long)TimeTradeServer()-offset),offset))
     {
      g_guard_other_symbols_done=false;
      LogInfo("balance at the last Prague midnight "+DoubleToString(g_guard.MidnightBalance(),2)+
              ", the EA's own equity floor "+DoubleToString(g_guard.OwnFloor(),2));
     }
   g_guard.SetBridgeFloor(g_session.BridgeEquityFloor(),g_session.WelcomeCount());
   double equity_floor=g_guard.Floor();
   double equity=AccountInfoDouble(ACCOUNT_EQUITY);
   ulong now=GetTickCount64();
   if(!g_guard.IsTripped())
     {
      if(equity_floor<=0 || equity>equity_floor)
         return;
      g_guard.Trip(now);
      g_last_guard_close_ms=now;
      g_guard_other_symbols_done=false;
      double lots=0;
      string failures="";
      int closed=g_executor.CloseOwnPositions(_Symbol,false,lots,failures);
      string detail="equity "+DoubleToString(equity,2)+" at or below the floor "+DoubleToString(equity_floor,2)+
                    " (balance at Prague midnight "+DoubleToString(g_guard.MidnightBalance(),2)+"): closed "+
                    IntegerToString(closed)+" position(s) of "+_Symbol+", "+DoubleToString(lots,2)+" lots"+failures+
                    "; no new positions until Prague midnight";
      LogError(detail);
      Alert("MT5Bridge ",_Symbol,": equity guard: ",detail);
      ReportFailsafe(MT5B_FAILSAFE_EQUITY_GUARD,detail);
      g_session.Flush();
      return;
     }
   bool others_due=(!g_guard_other_symbols_done && now-g_guard.TrippedAtMs()>=OTHER_SYMBOLS_AFTER);
   if(!others_due && now-g_last_guard_close_ms<GUARD_RETRY_MS)
      return;
   g_last_guard_close_ms=now;
   double lots=0;
   string failures="";
   int closed=g_executor.CloseOwnPositions(_Symbol,others_due || g_guard_other_symbols_done,lots,failures);
   if(others_due)
      g_guard_other_symbols_done=true;
   if(closed>0 || failures!="")
     {
      string detail="equity guard (floor "+DoubleToString(equity_floor,2)+", equity "+DoubleToString(equity,2)+
                    "): closed "+IntegerToString(closed)+" more position(s), "+DoubleToString(lots,2)+" lots"+failures;
      LogError(detail);
      ReportFailsafe(MT5B_FAILSAFE_EQUITY_GUARD,detail);
      g_session.Flush();
     }
  }

void CheckEquityGuard(void)
  {
   // the guard's own closes run the executor, whose steps call the guard: not again from inside
   if(g_guard_running)
      return;
   g_guard_running=true;
   GuardOnce();
   g_guard_running=false;
  }

//+------------------------------------------------------------------+
//| One non-HOLD command: the EA's own checks, then the trade        |
//| server, then exactly one RESULT - except for a command id already |
//| acted on, which is refused as a duplicate (FAILSAFE) and never   |
//| traded again.                                                    |
//+------------------------------------------------------------------+
void HandleCommand(const SCommand &c)
  {
   LogInfo("COMMAND "+IntegerToString(c.command_id)+" "+c.action+" "+c.side+" "+DoubleToString(c.volume,2)+" "+c.symbol+
           " ticket "+IntegerToString(c.ticket)+" sl "+DoubleToString(c.sl,8)+" tp "+DoubleToString(c.tp,8)+
           " ("+c.reason_code+": "+c.reason+")");
   bool opening=(c.action==MT5B_ACTION_OPEN || c.action==MT5B_ACTION_ADD);
   bool partial_close=(c.action==MT5B_ACTION_CLOSE && c.volume>0);
   EnsureExecutedIds();
   SResultInfo r;
   string problem="";
   // claimed before the order leaves: a command must never be traded twice, not even after a crash or
   // when it reaches another chart of the account
   int claim=g_executed.Claim(c.command_id,TimeCurrent(),problem);
   if(claim==CLAIM_DUPLICATE)
     {
      string detail="command "+IntegerToString(c.command_id)+" ("+c.action+") received again: already acted on, not executed twice";
      LogWarning(detail);
      ReportFailsafe(MT5B_FAILSAFE_DUPLICATE_COMMAND,detail);
      return;
     }
   if(claim==CLAIM_FAILED)
     {
      if(opening || partial_close)
        {
         RefuseCommand(c,r,TRADE_RETCODE_ERROR,"cannot record the command id ("+problem+
                       "): not executed, as it could not be protected from running twice");
         LogError(r.text);
         g_session.QueueResult(r);
         return;
        }
      // closing a whole position, modifying, closing all: harmless if repeated, and exits must not wait
      LogError("cannot record command id "+IntegerToString(c.command_id)+" ("+problem+"); executing it anyway");
     }
   // the wait for the COMMAND may have taken the deadline: the guard looks again before the order
   CheckEquityGuard();
   string why="";
   if(opening && c.symbol!=_Symbol)
      RefuseCommand(c,r,TRADE_RETCODE_INVALID,c.action+" for "+c.symbol+" sent to the "+_Symbol+" chart");
   else if(!TradingAllowed(why))
      RefuseCommand(c,r,TRADE_RETCODE_CLIENT_DISABLES_AT,why);
   else if(opening && !g_guard.OpensAllowed(AccountInfoDouble(ACCOUNT_EQUITY),why))
      RefuseCommand(c,r,TRADE_RETCODE_REJECT,why);
   else if(!g_executor.CanSendRequest())
     {
      string detail="command "+IntegerToString(c.command_id)+" ("+c.action+") refused: "+
                    IntegerToString(g_executor.RequestsInLastMinute())+" trade requests in the last minute, cap "+
                    IntegerToString(g_executor.RequestLimit());
      RefuseCommand(c,r,TRADE_RETCODE_TOO_MANY_REQUESTS,"the EA's cap on trade requests a minute is reached");
      LogWarning(detail);
      ReportFailsafe(MT5B_FAILSAFE_RATE_LIMIT,detail);
     }
   else
     {
      g_executor.Execute(c,r);
      if(g_executor.WasRateLimited())
        {
         string detail="command "+IntegerToString(c.command_id)+" ("+c.action+"): a retry was held back by the cap of "+
                       IntegerToString(g_executor.RequestLimit())+" trade requests a minute";
         LogWarning(detail);
         ReportFailsafe(MT5B_FAILSAFE_RATE_LIMIT,detail);
        }
     }
   LogResult(c,r);
   g_session.QueueResult(r);
   CheckEquityGuard();
  }

//+------------------------------------------------------------------+
//| A command that came after its tick's deadline is never executed. |
//| It is marked as acted on, so it cannot run later either, and     |
//| answered with its one RESULT, refused, so the bridge stops       |
//| counting its risk; one acted on already is a duplicate.          |
//+------------------------------------------------------------------+
void HandleLateCommands(void)
  {
   SCommand c;
   while(g_session.TakeLateCommand(c))
     {
      EnsureExecutedIds();
      string problem="";
      if(g_executed.Claim(c.command_id,TimeCurrent(),problem)==CLAIM_DUPLICATE)
        {
         string detail="command "+IntegerToString(c.command_id)+" ("+c.action+") received again, late: already "+
                       "acted on, not executed twice";
         LogWarning(detail);
         ReportFailsafe(MT5B_FAILSAFE_DUPLICATE_COMMAND,detail);
         continue;
        }
      SResultInfo r;
      RefuseCommand(c,r,TRADE_RETCODE_REJECT,"arrived after the EA's deadline of "+
                    IntegerToString(g_session.DeadlineMs())+" ms: not executed");
      g_session.QueueResult(r);
     }
  }

//+------------------------------------------------------------------+
//| Between two blocking steps of a command: the guard runs, and an  |
//| opening job goes on only while opening is still allowed.         |
//+------------------------------------------------------------------+
bool CGuardedExecutor::BetweenSteps(const bool opening)
  {
   CheckEquityGuard();
   if(!opening)
      return(true);
   string why="";
   return(g_guard.OpensAllowed(AccountInfoDouble(ACCOUNT_EQUITY),why));
  }

//--- the server's UTC offset, checked once a second; a change goes to the bridge as CLOCK
void WatchClock(void)
  {
   ulong now=GetTickCount64();
   if(g_last_clock_ms>0 && now-g_last_clock_ms<CLOCK_CHECK_MS)
      return;
   g_last_clock_ms=now;
   g_session.SetServerUtcOffset(g_clock.Offset());
  }

//--- a deal of this chart's symbol is reported; one not yet in the history is looked for again
void ReportDeal(const ulong deal,const int looks)
  {
   SDealInfo d;
   string why="";
   int found=CollectDeal(deal,d,why);
   if(found==1)
     {
      if(d.symbol!=_Symbol)
         return;
      LogDebug("DEAL #"+IntegerToString(d.deal)+" "+d.side+" "+d.entry+" "+d.reason+" "+DoubleToString(d.volume,2)+
               " @ "+DoubleToString(d.price,d.digits));
      g_session.QueueDeal(d);
      return;
     }
   if(found==0)
     {
      LogDebug(why);
      return;
     }
   if(looks>=PENDING_DEAL_LOOKS)
     {
      LogWarning(why+": not reported");
      return;
     }
   ArrayResize(g_pending_deals,g_pending_count+1,16);
   ArrayResize(g_pending_looks,g_pending_count+1,16);
   g_pending_deals[g_pending_count]=deal;
   g_pending_looks[g_pending_count]=looks+1;
   g_pending_count++;
  }

void RetryPendingDeals(void)
  {
   int count=g_pending_count;
   if(count==0)
      return;
   ulong deals[];
   int looks[];
   ArrayResize(deals,count);
   ArrayResize(looks,count);
   for(int i=0; i<count; i++)
     {
      deals[i]=g_pending_deals[i];
      looks[i]=g_pending_looks[i];
     }
   g_pending_count=0;
   for(int i=0; i<count; i++)
      ReportDeal(deals[i],looks[i]);
  }

//--- what the trader sees on the chart, refreshed once a second
void UpdateChartComment(void)
  {
   string text="MT5Bridge ";
   text=text+EA_VERSION+" | "+g_session.Status();
   if(g_session.IsReady())
     {
      double heard_s=(GetTickCount64()-g_session.LastHeardMs())/1000.0;
      text=text+"\nlast heard "+DoubleToString(heard_s,1)+" s ago, round trip "+
           IntegerToString(g_session.RoundTripUs())+" us (deadline "+IntegerToString(g_session.DeadlineMs())+" ms)";
     }
   text=text+"\nticks "+IntegerToString(g_session.TicksSent())+", holds by timeout "+
        IntegerToString(g_session.HoldsByTimeout())+", by error "+IntegerToString(g_session.HoldsByError())+
        ", late replies "+IntegerToString(g_session.LateReplies())+", waiting to send "+IntegerToString(g_session.Pending());
   text=text+"\nequity "+DoubleToString(AccountInfoDouble(ACCOUNT_EQUITY),2)+", floor "+DoubleToString(g_guard.Floor(),2);
   if(g_guard.IsTripped())
      text=text+" - GUARD TRIPPED: no new positions until Prague midnight";
   text=text+"\ntrade requests this minute "+IntegerToString(g_executor.RequestsInLastMinute())+" of "+
        IntegerToString(g_executor.RequestLimit());
   string why="";
   if(!TradingAllowed(why))
      text=text+"\nNOT TRADING: "+why;
   if(g_session.IsSilent())
      text=text+"\nBRIDGE SILENT: opening nothing new; positions keep their stop loss and take profit";
   text=text+"\nlast failsafe: "+g_last_failsafe;
   Comment(text);
  }

//--- the request cap: the stricter of the trader's and the bridge's
void ApplyRequestLimit(void)
  {
   int limit=InpMaxRequestsPerMinute;
   int bridge=g_session.MaxRequestsPerMinute();
   if(g_session.WasWelcomed() && bridge>0 && bridge<limit)
      limit=bridge;
   g_executor.SetRequestLimit(limit);
  }

//+------------------------------------------------------------------+
//| A change of chart symbol, inputs or account re-initialises the   |
//| EA without unloading it (REASON_CHARTCHANGE, REASON_PARAMETERS,  |
//| REASON_ACCOUNT): OnDeinit, then OnInit, and the globals keep     |
//| their values. What depends on the symbol, the inputs or the      |
//| account starts again: the executed-ids file (loaded again for    |
//| the account and journal), the guard's midnight balance and the   |
//| bridge's floor, the session; another account also drops what    |
//| waited to be sent and the guard's trip.                          |
//+------------------------------------------------------------------+
void Reinitialise(void)
  {
   long login=AccountInfoInteger(ACCOUNT_LOGIN);
   if(g_last_deinit_reason<0)
     {
      g_last_login=login;
      return;      // the first start: everything is new already
     }
   bool same_account=(login==g_last_login && login>0);
   LogInfo("re-initialised ("+DeinitReasonText(g_last_deinit_reason)+")"+
           (same_account ? "" : ": another account, nothing of the previous one is kept"));
   g_executed.Forget();
   g_executed_tried_ms=0;
   g_guard.Reset(same_account);
   g_guard_other_symbols_done=false;
   g_last_guard_close_ms=0;
   g_session.Reset(same_account);
   g_pending_count=0;
   g_positions_capped=0;
   if(!same_account)
      g_commissions.Clear();
   g_last_login=login;
  }

//+------------------------------------------------------------------+
//| Expert initialization                                            |
//+------------------------------------------------------------------+
int OnInit(void)
  {
   LogSetLevel(InpLogLevel);
   string problem="";
   if(!CheckInputs(problem))
     {
      Complain("input error: "+problem);
      return(INIT_PARAMETERS_INCORRECT);
     }
   if(MQLInfoInteger(MQL_DLLS_ALLOWED)==0)
     {
      Complain("DLL imports are not allowed, so libzmq.dll cannot be used: tick 'Allow DLL imports' in the EA's "+
               "properties (Common tab) and in Tools > Options > Expert Advisors, then attach the EA again");
      return(INIT_FAILED);
     }
   WatchTradingAllowed();
   LogInfo("MT5Bridge "+EA_VERSION+" on "+_Symbol+", libzmq "+ZmqVersion()+", bridge "+InpEndpoint+", magic "+
           IntegerToString(InpMagic));
   Reinitialise();
   g_executor.Init(InpMagic,InpDeviationPoints,InpMaxRetries);
   g_guard.Configure(InpEquityGuard,InpInitialBalance,InpDailyLossPct,InpMaxLossPct,InpGuardBufferPct);
   if(!InpEquityGuard)
      LogWarning("the EA's own equity guard is OFF (InpEquityGuard); only a floor sent by the bridge is applied");
   g_session.Configure(InpEndpoint,_Symbol,EA_VERSION,InpMagic,InpInitialBalance,InpDeadlineMs,InpHeartbeatMs,
                       InpSilenceMs,InpMaxRequestsPerMinute,InpHelloTimeoutMs,InpReconnectMaxMs,InpCurveServerKey,
                       InpCurvePublicKey,InpCurveSecretKey);
   g_session.SetWarmupBars(InpWarmupM1,InpWarmupM5,InpWarmupM15,InpWarmupH1);
   g_clock.Configure(MQLInfoInteger(MQL_TESTER)!=0,InpTesterUtcOffsetH,InpTesterUsSummerTime);
   g_session.SetServerUtcOffset(g_clock.Offset());
   ApplyRequestLimit();
   if(InpCurveServerKey!="")
     {
      uchar capability[];
      ZmqCString("curve",capability);
      if(zmq_has(capability)!=1)
        {
         Complain("InpCurveServerKey is set but this libzmq.dll has no CURVE support: use the one mql5/dll/build-libzmq.sh builds (CURVE built in)");
         return(INIT_FAILED);
        }
     }
   if(!g_session.Start(problem))
     {
      Complain(problem);
      return(INIT_FAILED);
     }
   if(!EventSetMillisecondTimer(TIMER_MS))
     {
      Complain("cannot start the timer (error "+IntegerToString(GetLastError())+")");
      return(INIT_FAILED);
     }
   CheckEquityGuard();
   g_session.Connect(HELLO_WAIT_IN_INIT);
   ApplyRequestLimit();
   UpdateChartComment();
   return(INIT_SUCCEEDED);
  }

//+------------------------------------------------------------------+
//| Expert deinitialization: BYE and a clean close, well within the  |
//| 2.5 s the terminal allows.                                       |
//+------------------------------------------------------------------+
void OnDeinit(const int reason)
  {
   EventKillTimer();
   g_last_deinit_reason=reason;
   string text=DeinitReasonText(reason);
   g_session.Bye(text);
   g_session.Shutdown();
   Comment("");
   LogInfo("stopped: "+text);
  }

//+------------------------------------------------------------------+
//| Expert tick: the equity guard, then TICK and the bridge's answer |
//+------------------------------------------------------------------+
void OnTick(void)
  {
   CheckEquityGuard();
   if(!g_session.IsReady())
     {
      // not welcomed (yet, or not again): no TICK, so no command; counted while the bridge is silent
      g_session.NoteHeldTick();
      return;
     }
   WatchClock();
   STickInfo tick;
   if(!CollectTick(tick,_Symbol,g_session.RoundTripUs()))
      return;
   int open_total=0;
   int count=CollectPositions(g_positions,g_commissions,open_total);
   if(open_total>MT5B_MAX_POSITIONS && open_total!=g_positions_capped)
      LogWarning(IntegerToString(open_total)+" positions are open; TICK carries the first "+
                 IntegerToString(MT5B_MAX_POSITIONS)+" (the protocol's cap): the bridge does not see the rest");
   if(open_total<=MT5B_MAX_POSITIONS && g_positions_capped>0)
      LogInfo(IntegerToString(open_total)+" positions are open: TICK carries them all again");
   g_positions_capped=(open_total>MT5B_MAX_POSITIONS) ? open_total : 0;
   SCommand command;
   int outcome=g_session.Tick(tick,g_positions,count,command);
   ApplyRequestLimit();
   if(outcome==TICK_COMMAND && command.action!=MT5B_ACTION_HOLD)
      HandleCommand(command);
   HandleLateCommands();
   g_session.Flush();
  }

//+------------------------------------------------------------------+
//| Timer: connection, heartbeat, late replies, what waits to be     |
//| sent, deals not yet in the history, the guard, the chart.        |
//+------------------------------------------------------------------+
void OnTimer(void)
  {
   CheckEquityGuard();
   WatchClock();
   g_session.Service();
   HandleLateCommands();
   ApplyRequestLimit();
   EnsureExecutedIds();
   RetryPendingDeals();
   CheckEquityGuard();
   g_session.Flush();
   ulong now=GetTickCount64();
   if(now-g_last_comment_ms>=1000)
     {
      g_last_comment_ms=now;
      WatchTradingAllowed();
      UpdateChartComment();
     }
  }

//+------------------------------------------------------------------+
//| Every deal on the account reaches every chart's EA; each chart   |
//| reports the deals of its own symbol: fills, stops and targets,   |
//| stop-outs and the trader's own closes.                           |
//+------------------------------------------------------------------+
void OnTradeTransaction(const MqlTradeTransaction &trans,const MqlTradeRequest &request,const MqlTradeResult &result)
  {
   if(trans.type!=TRADE_TRANSACTION_DEAL_ADD)
      return;
   // the position's commission changed with this deal
   g_commissions.Forget((long)trans.position);
   if(trans.symbol!=_Symbol)
      return;
   ReportDeal(trans.deal,0);
   g_session.Flush();
  }
//+------------------------------------------------------------------+
