//+------------------------------------------------------------------+
//| MT5Bridge/Messages.mqh                                           |
//| The wire messages: one Build function per EA -> bridge message   |
//| and one Parse function per bridge -> EA message. Names and values|
//| come from the generated Protocol.mqh only; the tests read these  |
//| functions and compare every key with the protocol's schema.      |
//| Nothing here asks the terminal anything: the callers collect the |
//| account, symbol and deal data into the structures below.         |
//+------------------------------------------------------------------+
#ifndef MT5B_MESSAGES_MQH
#define MT5B_MESSAGES_MQH

#include "Protocol.mqh"
#include "Json.mqh"

//--- decimals for money (account currency) and for lots on the wire
#define MONEY_DIGITS   2
#define VOLUME_DIGITS  8

//+------------------------------------------------------------------+
//| What HELLO says about the account, the symbol and the EA.        |
//+------------------------------------------------------------------+
struct SHelloInfo
  {
   string            ea_version;
   long              login;
   string            server;
   string            company;
   string            currency;
   string            margin_mode;        // MT5B_MARGIN_MODE_*
   double            initial_balance;    // 0 = unknown: sent as null
   double            first_deposit;      // 0 = unknown: sent as null
   bool              day_start_known;    // false: day_start_balance sent as null
   double            day_start_balance;  // balance at the last Prague midnight
   double            balance;
   double            equity;
   string            symbol;
   int               digits;
   double            point;
   double            tick_size;
   double            tick_value;
   double            contract_size;
   double            volume_min;
   double            volume_step;
   double            volume_max;
   long              stops_level;
   long              freeze_level;
   long              filling_modes;
   string            trade_mode;         // MT5B_TRADE_MODE_*
   long              server_utc_offset_s;
   double            margin_per_lot;
   long              magic;
   long              chart_id;
   long              time_msc;
  };

//--- one open position of the account, as TICK.positions carries it
struct SPositionInfo
  {
   long              ticket;
   string            symbol;
   string            side;               // MT5B_SIDE_BUY or MT5B_SIDE_SELL
   double            volume;
   double            open_price;
   double            sl;
   double            tp;
   double            profit;
   double            swap;
   double            commission;
   long              magic;
   long              open_time_msc;
   string            comment;
   int               digits;             // of the position's symbol, for its prices
  };

//--- the quote and the account state of one TICK
struct STickInfo
  {
   long              time_msc;
   double            bid;
   double            ask;
   double            volume;
   double            balance;
   double            equity;
   double            margin;
   double            free_margin;
   long              round_trip_us;
   int               digits;
  };

//--- the outcome of one command
struct SResultInfo
  {
   long              command_id;
   string            outcome;            // MT5B_OUTCOME_*
   long              retcode;
   long              ticket;
   double            price;
   double            volume;
   double            sl;                 // stops in force on the position after the command; 0 = none
   double            tp;
   string            text;
   long              time_msc;
   int               digits;
  };

//--- one deal of the account (HistoryDealGet*)
struct SDealInfo
  {
   long              deal;
   long              order;
   long              position_id;
   string            symbol;
   string            side;               // MT5B_SIDE_*
   string            entry;              // MT5B_ENTRY_*
   string            reason;             // MT5B_DEAL_REASON_*
   double            volume;
   double            price;
   double            profit;
   double            swap;
   double            commission;
   long              magic;
   long              time_msc;
   string            comment;
   int               digits;
  };

//--- something the EA did on its own
struct SFailsafeInfo
  {
   string            kind;               // MT5B_FAILSAFE_*
   long              time_msc;
   string            detail;
  };

//--- what WELCOME hands the EA
struct SWelcome
  {
   long              reply_to;
   long              protocol_version;
   long              deadline_ms;
   long              heartbeat_ms;
   long              stale_after_ms;
   long              failsafe_silence_ms;
   double            equity_floor;
   long              max_requests_per_minute;
   string            journal_id;         // the bridge journal's identity: 32 lowercase hex characters
  };

//--- what to do on a tick
struct SCommand
  {
   long              reply_to;
   long              command_id;
   string            action;             // MT5B_ACTION_*
   string            symbol;
   string            side;               // MT5B_SIDE_*, "" where there is no direction
   double            volume;
   double            sl;
   double            tp;
   long              ticket;
   string            reason_code;
   string            reason;
  };

//--- a frame the bridge refused
struct SErrorReply
  {
   long              reply_to;
   string            code;               // MT5B_ERR_*
   string            message;
  };

//+------------------------------------------------------------------+
//| EA -> bridge                                                     |
//+------------------------------------------------------------------+
string BuildHello(CJsonWriter &w,const long seq,const SHelloInfo &h)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_HELLO);
   w.Int(MT5B_F_SEQ,seq);
   w.Int(MT5B_F_PROTOCOL_VERSION,MT5B_PROTOCOL_VERSION);
   w.Str(MT5B_F_EA_VERSION,h.ea_version);
   w.Int(MT5B_F_LOGIN,h.login);
   w.Str(MT5B_F_SERVER,h.server);
   w.Str(MT5B_F_COMPANY,h.company);
   w.Str(MT5B_F_CURRENCY,h.currency);
   w.Str(MT5B_F_MARGIN_MODE,h.margin_mode);
   if(h.initial_balance>0)
      w.Num(MT5B_F_INITIAL_BALANCE,h.initial_balance,MONEY_DIGITS);
   else
      w.Null(MT5B_F_INITIAL_BALANCE);
   if(h.first_deposit>0)
      w.Num(MT5B_F_FIRST_DEPOSIT,h.first_deposit,MONEY_DIGITS);
   else
      w.Null(MT5B_F_FIRST_DEPOSIT);
   if(h.day_start_known)
      w.Num(MT5B_F_DAY_START_BALANCE,h.day_start_balance,MONEY_DIGITS);
   else
      w.Null(MT5B_F_DAY_START_BALANCE);
   w.Num(MT5B_F_BALANCE,h.balance,MONEY_DIGITS);
   w.Num(MT5B_F_EQUITY,h.equity,MONEY_DIGITS);
   w.Str(MT5B_F_SYMBOL,h.symbol);
   w.Int(MT5B_F_DIGITS,h.digits);
   // point and tick size can be finer than the price digits (0.00001 on a 5-digit symbol): full precision
   w.Num(MT5B_F_POINT,h.point,12);
   w.Num(MT5B_F_TICK_SIZE,h.tick_size,12);
   w.Num(MT5B_F_TICK_VALUE,h.tick_value,10);
   w.Num(MT5B_F_CONTRACT_SIZE,h.contract_size,8);
   w.Num(MT5B_F_VOLUME_MIN,h.volume_min,VOLUME_DIGITS);
   w.Num(MT5B_F_VOLUME_STEP,h.volume_step,VOLUME_DIGITS);
   w.Num(MT5B_F_VOLUME_MAX,h.volume_max,VOLUME_DIGITS);
   w.Int(MT5B_F_STOPS_LEVEL,h.stops_level);
   w.Int(MT5B_F_FREEZE_LEVEL,h.freeze_level);
   w.Int(MT5B_F_FILLING_MODES,h.filling_modes);
   w.Str(MT5B_F_TRADE_MODE,h.trade_mode);
   w.Int(MT5B_F_SERVER_UTC_OFFSET_S,h.server_utc_offset_s);
   w.Num(MT5B_F_MARGIN_PER_LOT,h.margin_per_lot,MONEY_DIGITS);
   w.Int(MT5B_F_MAGIC,h.magic);
   w.Int(MT5B_F_CHART_ID,h.chart_id);
   w.Int(MT5B_F_TIME_MSC,h.time_msc);
   w.EndObject();
   return(w.Text());
  }

//--- one chunk of closed bars, oldest first: rates[from .. from+count-1]
string BuildWarmup(CJsonWriter &w,const long seq,const string timeframe,const int chunk,const int chunks,
                   const MqlRates &rates[],const int from,const int count,const int digits)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_WARMUP);
   w.Int(MT5B_F_SEQ,seq);
   w.Str(MT5B_F_TIMEFRAME,timeframe);
   w.Int(MT5B_F_CHUNK,chunk);
   w.Int(MT5B_F_CHUNKS,chunks);
   w.BeginArray(MT5B_F_TIME_MSC);
   for(int i=from; i<from+count; i++)
      w.ItemInt((long)rates[i].time*1000);
   w.EndArray();
   w.BeginArray(MT5B_F_OPEN);
   for(int i=from; i<from+count; i++)
      w.ItemNum(rates[i].open,digits);
   w.EndArray();
   w.BeginArray(MT5B_F_HIGH);
   for(int i=from; i<from+count; i++)
      w.ItemNum(rates[i].high,digits);
   w.EndArray();
   w.BeginArray(MT5B_F_LOW);
   for(int i=from; i<from+count; i++)
      w.ItemNum(rates[i].low,digits);
   w.EndArray();
   w.BeginArray(MT5B_F_CLOSE);
   for(int i=from; i<from+count; i++)
      w.ItemNum(rates[i].close,digits);
   w.EndArray();
   w.BeginArray(MT5B_F_VOLUME);
   for(int i=from; i<from+count; i++)
      w.ItemNum((double)rates[i].tick_volume,0);
   w.EndArray();
   w.EndObject();
   return(w.Text());
  }

//--- one element of TICK.positions
void WritePosition(CJsonWriter &w,const SPositionInfo &p)
  {
   w.BeginObject();
   w.Int(MT5B_F_TICKET,p.ticket);
   w.Str(MT5B_F_SYMBOL,p.symbol);
   w.Str(MT5B_F_SIDE,p.side);
   w.Num(MT5B_F_VOLUME,p.volume,VOLUME_DIGITS);
   w.Num(MT5B_F_OPEN_PRICE,p.open_price,p.digits);
   w.Num(MT5B_F_SL,p.sl,p.digits);
   w.Num(MT5B_F_TP,p.tp,p.digits);
   w.Num(MT5B_F_PROFIT,p.profit,MONEY_DIGITS);
   w.Num(MT5B_F_SWAP,p.swap,MONEY_DIGITS);
   w.Num(MT5B_F_COMMISSION,p.commission,MONEY_DIGITS);
   w.Int(MT5B_F_MAGIC,p.magic);
   w.Int(MT5B_F_OPEN_TIME_MSC,p.open_time_msc);
   // the protocol keeps at most 31 characters, as MT5 does
   w.Str(MT5B_F_COMMENT,StringSubstr(p.comment,0,MT5B_MAX_COMMENT_CHARS));
   w.EndObject();
  }

string BuildTick(CJsonWriter &w,const long seq,const STickInfo &t,const SPositionInfo &positions[],const int count)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_TICK);
   w.Int(MT5B_F_SEQ,seq);
   w.Int(MT5B_F_TIME_MSC,t.time_msc);
   w.Num(MT5B_F_BID,t.bid,t.digits);
   w.Num(MT5B_F_ASK,t.ask,t.digits);
   w.Num(MT5B_F_VOLUME,t.volume,VOLUME_DIGITS);
   w.Num(MT5B_F_BALANCE,t.balance,MONEY_DIGITS);
   w.Num(MT5B_F_EQUITY,t.equity,MONEY_DIGITS);
   w.Num(MT5B_F_MARGIN,t.margin,MONEY_DIGITS);
   w.Num(MT5B_F_FREE_MARGIN,t.free_margin,MONEY_DIGITS);
   w.BeginArray(MT5B_F_POSITIONS);
   int n=count;
   if(n>MT5B_MAX_POSITIONS)
      n=MT5B_MAX_POSITIONS;
   for(int i=0; i<n; i++)
      WritePosition(w,positions[i]);
   w.EndArray();
   w.Int(MT5B_F_ROUND_TRIP_US,t.round_trip_us);
   w.EndObject();
   return(w.Text());
  }

string BuildResult(CJsonWriter &w,const long seq,const SResultInfo &r)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_RESULT);
   w.Int(MT5B_F_SEQ,seq);
   w.Int(MT5B_F_COMMAND_ID,r.command_id);
   w.Str(MT5B_F_OUTCOME,r.outcome);
   w.Int(MT5B_F_RETCODE,r.retcode);
   w.Int(MT5B_F_TICKET,r.ticket);
   w.Num(MT5B_F_PRICE,r.price,r.digits);
   w.Num(MT5B_F_VOLUME,r.volume,VOLUME_DIGITS);
   w.Num(MT5B_F_SL,r.sl,r.digits);
   w.Num(MT5B_F_TP,r.tp,r.digits);
   w.Str(MT5B_F_TEXT,r.text);
   w.Int(MT5B_F_TIME_MSC,r.time_msc);
   w.EndObject();
   return(w.Text());
  }

string BuildDeal(CJsonWriter &w,const long seq,const SDealInfo &d)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_DEAL);
   w.Int(MT5B_F_SEQ,seq);
   w.Int(MT5B_F_DEAL,d.deal);
   w.Int(MT5B_F_ORDER,d.order);
   w.Int(MT5B_F_POSITION_ID,d.position_id);
   w.Str(MT5B_F_SYMBOL,d.symbol);
   w.Str(MT5B_F_SIDE,d.side);
   w.Str(MT5B_F_ENTRY,d.entry);
   w.Str(MT5B_F_REASON,d.reason);
   w.Num(MT5B_F_VOLUME,d.volume,VOLUME_DIGITS);
   w.Num(MT5B_F_PRICE,d.price,d.digits);
   w.Num(MT5B_F_PROFIT,d.profit,MONEY_DIGITS);
   w.Num(MT5B_F_SWAP,d.swap,MONEY_DIGITS);
   w.Num(MT5B_F_COMMISSION,d.commission,MONEY_DIGITS);
   w.Int(MT5B_F_MAGIC,d.magic);
   w.Int(MT5B_F_TIME_MSC,d.time_msc);
   w.Str(MT5B_F_COMMENT,d.comment);
   w.EndObject();
   return(w.Text());
  }

string BuildFailsafe(CJsonWriter &w,const long seq,const SFailsafeInfo &f)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_FAILSAFE);
   w.Int(MT5B_F_SEQ,seq);
   w.Str(MT5B_F_KIND,f.kind);
   w.Int(MT5B_F_TIME_MSC,f.time_msc);
   w.Str(MT5B_F_DETAIL,f.detail);
   w.EndObject();
   return(w.Text());
  }

string BuildHeartbeat(CJsonWriter &w,const long seq,const long time_msc)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_HEARTBEAT);
   w.Int(MT5B_F_SEQ,seq);
   w.Int(MT5B_F_TIME_MSC,time_msc);
   w.EndObject();
   return(w.Text());
  }

//--- the trade server's UTC offset changed: later times convert with the new one
string BuildClock(CJsonWriter &w,const long seq,const long server_utc_offset_s,const long time_msc)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_CLOCK);
   w.Int(MT5B_F_SEQ,seq);
   w.Int(MT5B_F_SERVER_UTC_OFFSET_S,server_utc_offset_s);
   w.Int(MT5B_F_TIME_MSC,time_msc);
   w.EndObject();
   return(w.Text());
  }

string BuildBye(CJsonWriter &w,const long seq,const string reason)
  {
   w.Reset();
   w.BeginObject();
   w.Str(MT5B_F_TYPE,MT5B_MSG_BYE);
   w.Int(MT5B_F_SEQ,seq);
   w.Str(MT5B_F_REASON,reason);
   w.EndObject();
   return(w.Text());
  }

//+------------------------------------------------------------------+
//| bridge -> EA                                                     |
//+------------------------------------------------------------------+
//--- what every bridge message starts with: its type and the seq it answers
bool ReadReplyHeader(const CJsonReader &r,string &type,long &reply_to,string &problem)
  {
   if(!r.GetString(MT5B_F_TYPE,type,problem))
      return(false);
   return(r.GetLong(MT5B_F_REPLY_TO,reply_to,problem));
  }

//--- the bridge journal's identity as WELCOME must carry it
bool IsJournalId(const string text)
  {
   if(StringLen(text)!=32)
      return(false);
   for(int i=0; i<32; i++)
     {
      ushort c=StringGetCharacter(text,i);
      if(!((c>='0' && c<='9') || (c>='a' && c<='f')))
         return(false);
     }
   return(true);
  }

bool ParseWelcome(const CJsonReader &r,SWelcome &m,string &problem)
  {
   if(!r.GetLong(MT5B_F_REPLY_TO,m.reply_to,problem) ||
      !r.GetLong(MT5B_F_PROTOCOL_VERSION,m.protocol_version,problem) ||
      !r.GetLong(MT5B_F_DEADLINE_MS,m.deadline_ms,problem) ||
      !r.GetLong(MT5B_F_HEARTBEAT_MS,m.heartbeat_ms,problem) ||
      !r.GetLong(MT5B_F_STALE_AFTER_MS,m.stale_after_ms,problem) ||
      !r.GetLong(MT5B_F_FAILSAFE_SILENCE_MS,m.failsafe_silence_ms,problem) ||
      !r.GetDouble(MT5B_F_EQUITY_FLOOR,m.equity_floor,problem) ||
      !r.GetLong(MT5B_F_MAX_REQUESTS_PER_MINUTE,m.max_requests_per_minute,problem) ||
      !r.GetString(MT5B_F_JOURNAL_ID,m.journal_id,problem))
      return(false);
   if(m.protocol_version!=MT5B_PROTOCOL_VERSION)
     {
      problem="bridge speaks protocol "+IntegerToString(m.protocol_version)+", this EA "+
              IntegerToString(MT5B_PROTOCOL_VERSION);
      return(false);
     }
   if(m.deadline_ms<=0 || m.heartbeat_ms<=0 || m.failsafe_silence_ms<=0 || m.max_requests_per_minute<=0 ||
      m.equity_floor<0)
     {
      problem="a timing or failsafe value is not positive";
      return(false);
     }
   // it names a file: nothing but the 32 hex digits the protocol allows
   if(!IsJournalId(m.journal_id))
     {
      problem="journal_id '"+m.journal_id+"' is not 32 lowercase hex digits";
      return(false);
     }
   return(true);
  }

//+------------------------------------------------------------------+
//| What the EA accepts of WELCOME's timings: its own input ranges.  |
//| A bridge asking for more (a 60 s deadline would hold every       |
//| OnTick, and the equity guard with it, for a minute) is clamped.  |
//+------------------------------------------------------------------+
#define DEADLINE_MS_MIN         10
#define DEADLINE_MS_MAX         10000
#define HEARTBEAT_MS_MIN        100
#define HEARTBEAT_MS_MAX        60000
#define SILENCE_MS_MIN          1000
#define SILENCE_MS_MAX          3600000

long ClampLong(const long value,const long lowest,const long highest)
  {
   if(value<lowest)
      return(lowest);
   if(value>highest)
      return(highest);
   return(value);
  }

//--- true when something had to be clamped (the EA says so in its log)
bool ClampWelcome(SWelcome &m)
  {
   long deadline=ClampLong(m.deadline_ms,DEADLINE_MS_MIN,DEADLINE_MS_MAX);
   long heartbeat=ClampLong(m.heartbeat_ms,HEARTBEAT_MS_MIN,HEARTBEAT_MS_MAX);
   long silence=ClampLong(m.failsafe_silence_ms,SILENCE_MS_MIN,SILENCE_MS_MAX);
   bool changed=(deadline!=m.deadline_ms || heartbeat!=m.heartbeat_ms || silence!=m.failsafe_silence_ms);
   m.deadline_ms=deadline;
   m.heartbeat_ms=heartbeat;
   m.failsafe_silence_ms=silence;
   return(changed);
  }

//+------------------------------------------------------------------+
//| A RESULT never carries NaN or infinity as if it were 0: such a   |
//| number is zeroed and the outcome becomes UNKNOWN, so the bridge  |
//| settles the command from the deals instead of trusting it.      |
//| Returns false when something was not a finite number.            |
//+------------------------------------------------------------------+
bool FiniteResult(SResultInfo &r)
  {
   bool finite=true;
   if(!MathIsValidNumber(r.price))
     {
      r.price=0;
      finite=false;
     }
   if(!MathIsValidNumber(r.volume))
     {
      r.volume=0;
      finite=false;
     }
   if(!MathIsValidNumber(r.sl))
     {
      r.sl=0;
      finite=false;
     }
   if(!MathIsValidNumber(r.tp))
     {
      r.tp=0;
      finite=false;
     }
   if(!finite)
     {
      if(r.outcome==MT5B_OUTCOME_DONE || r.outcome==MT5B_OUTCOME_PARTIAL)
         r.outcome=MT5B_OUTCOME_UNKNOWN;
      r.text=r.text+"; the terminal reported a number that is not finite: settle from the deals";
     }
   return(finite);
  }

bool IsKnownAction(const string action)
  {
   return(action==MT5B_ACTION_HOLD || action==MT5B_ACTION_OPEN || action==MT5B_ACTION_ADD ||
          action==MT5B_ACTION_CLOSE || action==MT5B_ACTION_MODIFY || action==MT5B_ACTION_CLOSE_ALL);
  }

bool ParseCommand(const CJsonReader &r,SCommand &m,string &problem)
  {
   if(!r.GetLong(MT5B_F_REPLY_TO,m.reply_to,problem) ||
      !r.GetLong(MT5B_F_COMMAND_ID,m.command_id,problem) ||
      !r.GetString(MT5B_F_ACTION,m.action,problem) ||
      !r.GetString(MT5B_F_SYMBOL,m.symbol,problem) ||
      !r.GetString(MT5B_F_SIDE,m.side,problem) ||
      !r.GetDouble(MT5B_F_VOLUME,m.volume,problem) ||
      !r.GetDouble(MT5B_F_SL,m.sl,problem) ||
      !r.GetDouble(MT5B_F_TP,m.tp,problem) ||
      !r.GetLong(MT5B_F_TICKET,m.ticket,problem) ||
      !r.GetString(MT5B_F_REASON_CODE,m.reason_code,problem) ||
      !r.GetString(MT5B_F_REASON,m.reason,problem))
      return(false);
   // the bridge validates all of this before sending; a frame that breaks it is not acted on
   if(!IsKnownAction(m.action))
     {
      problem="unknown action '"+m.action+"'";
      return(false);
     }
   if(m.side!=MT5B_SIDE_BUY && m.side!=MT5B_SIDE_SELL && m.side!=MT5B_SIDE_NONE)
     {
      problem="unknown side '"+m.side+"'";
      return(false);
     }
   if((m.action==MT5B_ACTION_HOLD)!=(m.command_id==MT5B_HOLD_COMMAND_ID) || m.command_id<0)
     {
      problem="command_id "+IntegerToString(m.command_id)+" does not fit action "+m.action;
      return(false);
     }
   if(m.volume<0 || m.sl<0 || m.tp<0 || m.ticket<0)
     {
      problem="a negative volume, price or ticket";
      return(false);
     }
   return(true);
  }

//--- the id of a COMMAND that could not be read whole: its RESULT still frees the command's risk at the bridge
bool ReadCommandId(const CJsonReader &r,long &command_id)
  {
   string ignored="";
   return(r.GetLong(MT5B_F_COMMAND_ID,command_id,ignored));
  }

bool ParseError(const CJsonReader &r,SErrorReply &m,string &problem)
  {
   if(!r.GetLong(MT5B_F_REPLY_TO,m.reply_to,problem) ||
      !r.GetString(MT5B_F_CODE,m.code,problem) ||
      !r.GetString(MT5B_F_MESSAGE,m.message,problem))
      return(false);
   return(true);
  }

#endif // MT5B_MESSAGES_MQH
