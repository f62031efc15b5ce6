//+------------------------------------------------------------------+
//| MT5Bridge/Terminal.mqh                                           |
//| Reads the account, the symbol, positions and deals from the      |
//| terminal into the message structures, and names MT5's enums the |
//| way the protocol spells them.                                    |
//+------------------------------------------------------------------+
#ifndef MT5B_TERMINAL_MQH
#define MT5B_TERMINAL_MQH

#include "Protocol.mqh"
#include "Messages.mqh"
#include "PragueClock.mqh"
#include "Log.mqh"


//+------------------------------------------------------------------+
//| MT5 enums in the protocol's words                                |
//+------------------------------------------------------------------+
string MarginModeName(const long mode)
  {
   if(mode==ACCOUNT_MARGIN_MODE_RETAIL_HEDGING)
      return(MT5B_MARGIN_MODE_HEDGING);
   if(mode==ACCOUNT_MARGIN_MODE_EXCHANGE)
      return(MT5B_MARGIN_MODE_EXCHANGE);
   return(MT5B_MARGIN_MODE_NETTING);
  }

string TradeModeName(const long mode)
  {
   if(mode==SYMBOL_TRADE_MODE_FULL)
      return(MT5B_TRADE_MODE_FULL);
   if(mode==SYMBOL_TRADE_MODE_LONGONLY)
      return(MT5B_TRADE_MODE_LONGONLY);
   if(mode==SYMBOL_TRADE_MODE_SHORTONLY)
      return(MT5B_TRADE_MODE_SHORTONLY);
   if(mode==SYMBOL_TRADE_MODE_CLOSEONLY)
      return(MT5B_TRADE_MODE_CLOSEONLY);
   return(MT5B_TRADE_MODE_DISABLED);
  }

string PositionSideName(const long position_type)
  {
   if(position_type==POSITION_TYPE_BUY)
      return(MT5B_SIDE_BUY);
   return(MT5B_SIDE_SELL);
  }

//--- false for deals that are not a buy or a sell (balance, credit, commission, ...)
bool DealSideName(const long deal_type,string &name)
  {
   if(deal_type==DEAL_TYPE_BUY)
     {
      name=MT5B_SIDE_BUY;
      return(true);
     }
   if(deal_type==DEAL_TYPE_SELL)
     {
      name=MT5B_SIDE_SELL;
      return(true);
     }
   return(false);
  }

bool DealEntryName(const long entry,string &name)
  {
   if(entry==DEAL_ENTRY_IN)
      name=MT5B_ENTRY_IN;
   else if(entry==DEAL_ENTRY_OUT)
      name=MT5B_ENTRY_OUT;
   else if(entry==DEAL_ENTRY_INOUT)
      name=MT5B_ENTRY_INOUT;
   else if(entry==DEAL_ENTRY_OUT_BY)
      name=MT5B_ENTRY_OUT_BY;
   else
      return(false);
   return(true);
  }

//--- false for a reason the protocol does not know (a newer terminal may add some)
bool DealReasonName(const long reason,string &name)
  {
   if(reason==DEAL_REASON_CLIENT)
      name=MT5B_DEAL_REASON_CLIENT;
   else if(reason==DEAL_REASON_MOBILE)
      name=MT5B_DEAL_REASON_MOBILE;
   else if(reason==DEAL_REASON_WEB)
      name=MT5B_DEAL_REASON_WEB;
   else if(reason==DEAL_REASON_EXPERT)
      name=MT5B_DEAL_REASON_EXPERT;
   else if(reason==DEAL_REASON_SL)
      name=MT5B_DEAL_REASON_SL;
   else if(reason==DEAL_REASON_TP)
      name=MT5B_DEAL_REASON_TP;
   else if(reason==DEAL_REASON_SO)
      name=MT5B_DEAL_REASON_SO;
   else if(reason==DEAL_REASON_ROLLOVER)
      name=MT5B_DEAL_REASON_ROLLOVER;
   else if(reason==DEAL_REASON_VMARGIN)
      name=MT5B_DEAL_REASON_VMARGIN;
   else if(reason==DEAL_REASON_SPLIT)
      name=MT5B_DEAL_REASON_SPLIT;
   else
      return(false);
   return(true);
  }

//--- OnDeinit's reason in words, for BYE and the log
string DeinitReasonText(const int reason)
  {
   if(reason==REASON_PROGRAM)
      return("the EA stopped itself");
   if(reason==REASON_REMOVE)
      return("EA removed from the chart");
   if(reason==REASON_RECOMPILE)
      return("EA recompiled");
   if(reason==REASON_CHARTCHANGE)
      return("chart symbol or timeframe changed");
   if(reason==REASON_CHARTCLOSE)
      return("chart closed");
   if(reason==REASON_PARAMETERS)
      return("EA inputs changed");
   if(reason==REASON_ACCOUNT)
      return("another account logged in");
   if(reason==REASON_TEMPLATE)
      return("another chart template applied");
   if(reason==REASON_INITFAILED)
      return("EA initialisation failed");
   if(reason==REASON_CLOSE)
      return("terminal closed");
   return("deinit reason "+IntegerToString(reason));
  }

//+------------------------------------------------------------------+
//| Clocks                                                           |
//+------------------------------------------------------------------+
//--- trade-server time now, in ms since 1970 (the clock every *_msc of the protocol uses)
long ServerTimeMsc(void)
  {
   return((long)TimeTradeServer()*1000);
  }

//+------------------------------------------------------------------+
//| The server's UTC offset, checked. Live: TimeTradeServer() minus  |
//| TimeGMT() (the PC clock) to the whole hour; when the two do not  |
//| agree on one, a warning and the last good offset is kept. In the |
//| Strategy Tester TimeGMT follows the simulated server time, so    |
//| the broker's known offset (inputs) is used instead.              |
//+------------------------------------------------------------------+
class CServerClock
  {
private:
   bool              m_tester;
   int               m_tester_hours;
   bool              m_tester_us_dst;
   long              m_offset;
   bool              m_known;
   bool              m_warned;

public:
                     CServerClock(void) { m_tester=false; m_tester_hours=2; m_tester_us_dst=true; m_offset=0;
                                          m_known=false; m_warned=false; }
   void              Configure(const bool tester,const int tester_hours,const bool tester_us_dst);
   long              Offset(void);
   datetime          Utc(void) { long offset=Offset(); return((datetime)((long)TimeTradeServer()-offset)); }
  };

void CServerClock::Configure(const bool tester,const int tester_hours,const bool tester_us_dst)
  {
   m_tester=tester;
   m_tester_hours=tester_hours;
   m_tester_us_dst=tester_us_dst;
   m_known=false;
   m_warned=false;
  }

long CServerClock::Offset(void)
  {
   datetime server=TimeTradeServer();
   if(m_tester)
      return(TesterServerOffset(server,m_tester_hours,m_tester_us_dst));
   long offset=0;
   datetime utc=TimeGMT();
   if(WholeHourOffset(server,utc,offset))
     {
      if(m_warned)
         LogInfo("the PC clock agrees with the trade server again: server time is UTC"+
                 (offset>=0 ? "+" : "")+DoubleToString(offset/3600.0,0));
      m_offset=offset;
      m_known=true;
      m_warned=false;
      return(m_offset);
     }
   if(!m_warned)
      LogWarning("the PC clock (TimeGMT "+TimeToString(utc,TIME_DATE|TIME_SECONDS)+") and the trade server ("+
                 TimeToString(server,TIME_DATE|TIME_SECONDS)+") differ by "+
                 IntegerToString((long)server-(long)utc)+" s, not a whole-hour offset: set the PC clock right; "+
                 (m_known ? "the last good offset is kept" : "the offset is taken as the nearest whole hour"));
   m_warned=true;
   if(!m_known)
      m_offset=offset;
   return(m_offset);
  }

//+------------------------------------------------------------------+
//| Is there what HELLO needs? At terminal start an EA often runs    |
//| before the account is logged in or the symbol has its quotes;    |
//| the EA then waits rather than send values the bridge refuses.    |
//+------------------------------------------------------------------+
bool AccountReady(string &why)
  {
   if(AccountInfoInteger(ACCOUNT_LOGIN)<=0)
     {
      why="no account logged in";
      return(false);
     }
   if(TerminalInfoInteger(TERMINAL_CONNECTED)==0)
     {
      why="the terminal is not connected to the trade server";
      return(false);
     }
   string currency=AccountInfoString(ACCOUNT_CURRENCY);
   if(StringLen(currency)!=3 || AccountInfoString(ACCOUNT_SERVER)=="")
     {
      why="the account's currency or server is not known yet";
      return(false);
     }
   return(true);
  }

bool SymbolReady(const string symbol,string &why)
  {
   double volume_min=SymbolInfoDouble(symbol,SYMBOL_VOLUME_MIN);
   double volume_max=SymbolInfoDouble(symbol,SYMBOL_VOLUME_MAX);
   if(SymbolInfoDouble(symbol,SYMBOL_POINT)<=0 || SymbolInfoDouble(symbol,SYMBOL_TRADE_TICK_SIZE)<=0 ||
      SymbolInfoDouble(symbol,SYMBOL_TRADE_TICK_VALUE)<=0 || SymbolInfoDouble(symbol,SYMBOL_TRADE_CONTRACT_SIZE)<=0 ||
      SymbolInfoDouble(symbol,SYMBOL_VOLUME_STEP)<=0 || volume_min<=0 || volume_max<volume_min)
     {
      why=symbol+": its trading specification is not loaded yet (tick value, volumes)";
      return(false);
     }
   return(true);
  }

//--- OrderCalcMargin of one lot bought at the ask; 0 when the terminal cannot say
double MarginPerLot(const string symbol)
  {
   double ask=SymbolInfoDouble(symbol,SYMBOL_ASK);
   double margin=0;
   if(ask<=0 || !OrderCalcMargin(ORDER_TYPE_BUY,symbol,1.0,ask,margin) || !MathIsValidNumber(margin) || margin<0)
      return(0);
   return(margin);
  }

//--- the upper-case letters of the account currency (the protocol wants three of A-Z)
string CurrencyCode(void)
  {
   string currency=AccountInfoString(ACCOUNT_CURRENCY);
   StringToUpper(currency);
   return(currency);
  }

//+------------------------------------------------------------------+
//| Balance at the last Prague midnight: today's balance less every  |
//| deal booked since (trades, swaps, commissions, fees, deposits),  |
//| so the EA knows it even when it was not running at midnight.     |
//| The history is in trade-server time, hence the offset.           |
//+------------------------------------------------------------------+
bool BalanceAtUtc(const datetime since_utc,const long server_utc_offset_s,double &balance)
  {
   datetime since_server=(datetime)((long)since_utc+server_utc_offset_s);
   datetime until_server=(datetime)((long)TimeTradeServer()+SECONDS_PER_DAY);
   if(!HistorySelect(since_server,until_server))
      return(false);
   double booked=0;
   int deals=HistoryDealsTotal();
   for(int i=0; i<deals; i++)
     {
      ulong deal=HistoryDealGetTicket(i);
      if(deal==0)
         continue;
      booked+=HistoryDealGetDouble(deal,DEAL_PROFIT)+HistoryDealGetDouble(deal,DEAL_SWAP)+
              HistoryDealGetDouble(deal,DEAL_COMMISSION)+HistoryDealGetDouble(deal,DEAL_FEE);
     }
   balance=AccountInfoDouble(ACCOUNT_BALANCE)-booked;
   return(MathIsValidNumber(balance));
  }

//+------------------------------------------------------------------+
//| The account's first deposit: the earliest balance deal that      |
//| adds money in the whole history. 0 when the history does not     |
//| reach it.                                                        |
//+------------------------------------------------------------------+
double FirstDeposit(void)
  {
   if(!HistorySelect(0,(datetime)((long)TimeTradeServer()+SECONDS_PER_DAY)))
      return(0);
   double amount=0;
   long earliest=0;
   int deals=HistoryDealsTotal();
   for(int i=0; i<deals; i++)
     {
      ulong deal=HistoryDealGetTicket(i);
      if(deal==0 || HistoryDealGetInteger(deal,DEAL_TYPE)!=DEAL_TYPE_BALANCE)
         continue;
      double profit=HistoryDealGetDouble(deal,DEAL_PROFIT);
      long when=HistoryDealGetInteger(deal,DEAL_TIME_MSC);
      if(profit>0 && (amount<=0 || when<earliest))
        {
         amount=profit;
         earliest=when;
        }
     }
   return(amount);
  }

void CollectHello(SHelloInfo &h,const string symbol,const string ea_version,const long magic,
                  const double initial_balance,const long server_utc_offset_s)
  {
   h.ea_version=ea_version;
   h.login=AccountInfoInteger(ACCOUNT_LOGIN);
   h.server=AccountInfoString(ACCOUNT_SERVER);
   h.company=AccountInfoString(ACCOUNT_COMPANY);
   h.currency=CurrencyCode();
   h.margin_mode=MarginModeName(AccountInfoInteger(ACCOUNT_MARGIN_MODE));
   h.initial_balance=initial_balance;
   h.first_deposit=FirstDeposit();
   datetime utc_now=(datetime)((long)TimeTradeServer()-server_utc_offset_s);
   h.day_start_balance=0;
   h.day_start_known=BalanceAtUtc(PragueMidnightUtc(utc_now),server_utc_offset_s,h.day_start_balance);
   h.balance=AccountInfoDouble(ACCOUNT_BALANCE);
   h.equity=AccountInfoDouble(ACCOUNT_EQUITY);
   h.symbol=symbol;
   h.digits=(int)SymbolInfoInteger(symbol,SYMBOL_DIGITS);
   h.point=SymbolInfoDouble(symbol,SYMBOL_POINT);
   h.tick_size=SymbolInfoDouble(symbol,SYMBOL_TRADE_TICK_SIZE);
   h.tick_value=SymbolInfoDouble(symbol,SYMBOL_TRADE_TICK_VALUE);
   h.contract_size=SymbolInfoDouble(symbol,SYMBOL_TRADE_CONTRACT_SIZE);
   h.volume_min=SymbolInfoDouble(symbol,SYMBOL_VOLUME_MIN);
   h.volume_step=SymbolInfoDouble(symbol,SYMBOL_VOLUME_STEP);
   h.volume_max=SymbolInfoDouble(symbol,SYMBOL_VOLUME_MAX);
   h.stops_level=SymbolInfoInteger(symbol,SYMBOL_TRADE_STOPS_LEVEL);
   h.freeze_level=SymbolInfoInteger(symbol,SYMBOL_TRADE_FREEZE_LEVEL);
   h.filling_modes=SymbolInfoInteger(symbol,SYMBOL_FILLING_MODE);
   h.trade_mode=TradeModeName(SymbolInfoInteger(symbol,SYMBOL_TRADE_MODE));
   h.server_utc_offset_s=server_utc_offset_s;
   h.margin_per_lot=MarginPerLot(symbol);
   h.magic=magic;
   h.chart_id=ChartID();
   h.time_msc=ServerTimeMsc();
  }

//+------------------------------------------------------------------+
//| Commission charged so far per position. POSITION_COMMISSION is   |
//| deprecated (always 0), so it is summed from the position's deals |
//| once and remembered until a new deal of the position arrives.    |
//+------------------------------------------------------------------+
class CCommissionCache
  {
private:
   long              m_ids[];
   double            m_values[];
   int               m_count;

   int               Find(const long position_id) const;

public:
                     CCommissionCache(void) { m_count=0; }
   double            Commission(const long position_id);
   void              Forget(const long position_id);
   void              Clear(void) { m_count=0; }
  };

int CCommissionCache::Find(const long position_id) const
  {
   for(int i=0; i<m_count; i++)
      if(m_ids[i]==position_id)
         return(i);
   return(-1);
  }

double CCommissionCache::Commission(const long position_id)
  {
   int i=Find(position_id);
   if(i>=0)
      return(m_values[i]);
   double total=0;
   if(HistorySelectByPosition(position_id))
     {
      int deals=HistoryDealsTotal();
      for(int k=0; k<deals; k++)
        {
         ulong deal=HistoryDealGetTicket(k);
         if(deal>0)
            total+=HistoryDealGetDouble(deal,DEAL_COMMISSION);
        }
     }
   else
      return(0);    // history not available now: try again next tick
   // a small bounded cache: positions come and go, old entries are simply overwritten
   if(m_count>=256)
      m_count=0;
   ArrayResize(m_ids,m_count+1,32);
   ArrayResize(m_values,m_count+1,32);
   m_ids[m_count]=position_id;
   m_values[m_count]=total;
   m_count++;
   return(total);
  }

void CCommissionCache::Forget(const long position_id)
  {
   int i=Find(position_id);
   if(i<0)
      return;
   m_count--;
   m_ids[i]=m_ids[m_count];
   m_values[i]=m_values[m_count];
  }

//+------------------------------------------------------------------+
//| Every open position of the account, all symbols and magics, at   |
//| most MT5B_MAX_POSITIONS (open_total tells how many there are, so |
//| the caller can say when the cap hides some). Returns how many    |
//| were filled in.                                                  |
//+------------------------------------------------------------------+
int CollectPositions(SPositionInfo &out[],CCommissionCache &commissions,int &open_total)
  {
   int total=PositionsTotal();
   open_total=total;
   if(total>MT5B_MAX_POSITIONS)
      total=MT5B_MAX_POSITIONS;
   ArrayResize(out,total);
   int n=0;
   for(int i=0; i<total; i++)
     {
      ulong ticket=PositionGetTicket(i);
      if(ticket==0)
         continue;
      double volume=PositionGetDouble(POSITION_VOLUME);
      double open_price=PositionGetDouble(POSITION_PRICE_OPEN);
      if(volume<=0 || open_price<=0)
         continue;
      string symbol=PositionGetString(POSITION_SYMBOL);
      out[n].ticket=(long)ticket;
      out[n].symbol=symbol;
      out[n].side=PositionSideName(PositionGetInteger(POSITION_TYPE));
      out[n].volume=volume;
      out[n].open_price=open_price;
      out[n].sl=PositionGetDouble(POSITION_SL);
      out[n].tp=PositionGetDouble(POSITION_TP);
      out[n].profit=PositionGetDouble(POSITION_PROFIT);
      out[n].swap=PositionGetDouble(POSITION_SWAP);
      out[n].magic=PositionGetInteger(POSITION_MAGIC);
      out[n].open_time_msc=PositionGetInteger(POSITION_TIME_MSC);
      out[n].comment=PositionGetString(POSITION_COMMENT);
      out[n].digits=(int)SymbolInfoInteger(symbol,SYMBOL_DIGITS);
      long position_id=PositionGetInteger(POSITION_IDENTIFIER);
      // the commission lookup selects history, which leaves the position selection alone
      out[n].commission=commissions.Commission(position_id);
      if(out[n].magic<0)
         out[n].magic=0;
      n++;
     }
   return(n);
  }

//--- the chart symbol's latest quote with the account's state; false when the quote is unusable
bool CollectTick(STickInfo &t,const string symbol,const long round_trip_us)
  {
   MqlTick tick;
   if(!SymbolInfoTick(symbol,tick))
      return(false);
   // the bridge refuses a tick without both prices or with bid above ask
   if(tick.bid<=0 || tick.ask<=0 || tick.bid>tick.ask)
      return(false);
   t.time_msc=tick.time_msc;
   t.bid=tick.bid;
   t.ask=tick.ask;
   t.volume=tick.volume_real;
   if(t.volume<0)
      t.volume=0;
   t.balance=AccountInfoDouble(ACCOUNT_BALANCE);
   t.equity=AccountInfoDouble(ACCOUNT_EQUITY);
   t.margin=AccountInfoDouble(ACCOUNT_MARGIN);
   t.free_margin=AccountInfoDouble(ACCOUNT_MARGIN_FREE);
   t.round_trip_us=round_trip_us;
   t.digits=(int)SymbolInfoInteger(symbol,SYMBOL_DIGITS);
   return(true);
  }

//+------------------------------------------------------------------+
//| A deal from the history. false with why when it is not in the    |
//| history yet (right after OnTradeTransaction it may not be) or is |
//| not a trade the protocol reports.                                |
//| Returns: 1 filled in, 0 not a reportable deal, -1 try later.     |
//+------------------------------------------------------------------+
int CollectDeal(const ulong deal,SDealInfo &d,string &why)
  {
   if(!HistoryDealSelect(deal))
     {
      why="deal #"+IntegerToString((long)deal)+" not in the history yet";
      return(-1);
     }
   if(!DealSideName(HistoryDealGetInteger(deal,DEAL_TYPE),d.side))
     {
      why="deal #"+IntegerToString((long)deal)+" is a balance operation, not a trade";
      return(0);
     }
   if(!DealEntryName(HistoryDealGetInteger(deal,DEAL_ENTRY),d.entry))
     {
      why="deal #"+IntegerToString((long)deal)+" has an entry the protocol does not know";
      return(0);
     }
   if(!DealReasonName(HistoryDealGetInteger(deal,DEAL_REASON),d.reason))
     {
      why="deal #"+IntegerToString((long)deal)+" has a reason the protocol does not know";
      return(0);
     }
   d.deal=(long)deal;
   d.order=HistoryDealGetInteger(deal,DEAL_ORDER);
   d.position_id=HistoryDealGetInteger(deal,DEAL_POSITION_ID);
   d.symbol=HistoryDealGetString(deal,DEAL_SYMBOL);
   d.volume=HistoryDealGetDouble(deal,DEAL_VOLUME);
   d.price=HistoryDealGetDouble(deal,DEAL_PRICE);
   d.profit=HistoryDealGetDouble(deal,DEAL_PROFIT);
   d.swap=HistoryDealGetDouble(deal,DEAL_SWAP);
   d.commission=HistoryDealGetDouble(deal,DEAL_COMMISSION);
   d.magic=HistoryDealGetInteger(deal,DEAL_MAGIC);
   d.time_msc=HistoryDealGetInteger(deal,DEAL_TIME_MSC);
   d.comment=HistoryDealGetString(deal,DEAL_COMMENT);
   d.digits=(int)SymbolInfoInteger(d.symbol,SYMBOL_DIGITS);
   if(d.order<0)
      d.order=0;
   if(d.position_id<0)
      d.position_id=0;
   if(d.magic<0)
      d.magic=0;
   if(d.volume<=0 || d.price<=0 || d.symbol=="")
     {
      why="deal #"+IntegerToString((long)deal)+" has no volume, price or symbol";
      return(0);
     }
   return(1);
  }

#endif // MT5B_TERMINAL_MQH
