//+------------------------------------------------------------------+
//| MT5Bridge/Execution.mqh                                          |
//| Carries out one COMMAND on the trade server with CTrade: the     |
//| symbol's filling mode, volumes on its grid, stops outside its    |
//| minimum distance, a fresh price after a requote, and never a     |
//| second request after an answer that leaves the outcome unknown   |
//| (timeout, lost connection): that is reported as UNKNOWN and the  |
//| bridge settles it from the account. Hedging and netting both.    |
//|                                                                  |
//| Three habits of CTrade are guarded against: a call that returns  |
//| early leaves the previous result in place (the result is cleared |
//| before every call), PositionClosePartial refuses netting         |
//| accounts and sets no comment (a partial close is sent as the     |
//| same request built here, tagged), and PositionOpen silently      |
//| drops a stop the symbol does not allow on orders (such a command |
//| is refused instead).                                             |
//+------------------------------------------------------------------+
#ifndef MT5B_EXECUTION_MQH
#define MT5B_EXECUTION_MQH

#include <Trade\Trade.mqh>
#include "Protocol.mqh"
#include "Messages.mqh"
#include "TradeMath.mqh"
#include "Terminal.mqh"
#include "Log.mqh"

//--- the position comment the bridge reconciles by: "mt5b:<command_id>"
#define COMMAND_COMMENT_PREFIX  MT5B_COMMENT_PREFIX

//--- what a job does
#define JOB_OPEN          1
#define JOB_CLOSE         2
#define JOB_CLOSE_PART    3
#define JOB_MODIFY        4

string CommandComment(const long command_id)
  {
   string prefix=COMMAND_COMMENT_PREFIX;
   return(prefix+IntegerToString(command_id));
  }

//+------------------------------------------------------------------+
//| CTrade with a way to clear its last result, so that a call       |
//| returning before it sent anything cannot be mistaken for the     |
//| previous call's success.                                         |
//+------------------------------------------------------------------+
class CBridgeTrade : public CTrade
  {
public:
   void              ClearResult(void) { ZeroMemory(m_result); }
  };

//--- one request to the trade server, with its retries and its outcome
struct STradeJob
  {
   int               kind;
   string            symbol;
   ENUM_ORDER_TYPE   order_type;
   double            volume;
   double            sl;
   double            tp;
   long              ticket;          // position to close or modify
   string            comment;
   bool              exempt;          // not held back by the request cap (closing at the equity floor)
   bool              opening;         // adds risk: stops when the equity guard forbids opening
   double            volume_before;   // the position's volume before a partial close
   //--- outcome
   uint              retcode;
   long              result_ticket;   // the position opened or acted on
   double            price;
   double            filled;
   string            text;
   double            sl_after;        // stops in force on the position after the request; 0 = none
   double            tp_after;
  };

//+------------------------------------------------------------------+
//| The filling policy to ask for on a symbol: FOK where allowed,    |
//| else IOC, else RETURN (exchange execution). CTrade checks it     |
//| against the execution mode (FillingAsCTrade).                    |
//+------------------------------------------------------------------+
ENUM_ORDER_TYPE_FILLING FillingFor(const string symbol)
  {
   long modes=SymbolInfoInteger(symbol,SYMBOL_FILLING_MODE);
   if((modes&SYMBOL_FILLING_FOK)!=0)
      return(ORDER_FILLING_FOK);
   if((modes&SYMBOL_FILLING_IOC)!=0)
      return(ORDER_FILLING_IOC);
   return(ORDER_FILLING_RETURN);
  }

string RetcodeText(const uint retcode)
  {
   return("retcode "+IntegerToString(retcode));
  }

class CCommandExecutor
  {
private:
   CBridgeTrade      m_trade;
   long              m_magic;
   int               m_deviation;
   int               m_max_retries;
   int               m_request_limit;
   CRateLimiter      m_limiter;
   bool              m_rate_limited;     // the last command had a request held back by the cap

   bool              Hedging(void) const;
   bool              TakeRequestSlot(const bool exempt);
   void              SendOnce(STradeJob &job);
   void              FillDetails(STradeJob &job);
   void              StopsAfter(STradeJob &job);
   bool              SeenOnAccount(STradeJob &job);
   bool              FreshPrice(STradeJob &job);
   void              Run(STradeJob &job);
   void              NewJob(STradeJob &job,const int kind,const string symbol,const string comment,const bool exempt);
   bool              CloseTicket(const long ticket,const string comment,const bool exempt,STradeJob &job);
   void              Refuse(SResultInfo &r,const uint retcode,const string text);
   void              FromJob(const STradeJob &job,SResultInfo &r);
   void              ExecuteOpen(const SCommand &c,SResultInfo &r);
   void              ExecuteClose(const SCommand &c,SResultInfo &r);
   void              ExecuteModify(const SCommand &c,SResultInfo &r);
   void              ExecuteCloseAll(const SCommand &c,SResultInfo &r);

protected:
   //--- called before every further blocking step (a retry, a pause, the next position of CLOSE_ALL) so
   //--- the equity guard is never starved; false: an opening job must stop (the guard forbids opening)
   virtual bool      BetweenSteps(const bool opening) { return(true); }

public:
                     CCommandExecutor(void);
   void              Init(const long magic,const int deviation,const int max_retries);
   void              SetRequestLimit(const int per_minute) { m_request_limit=per_minute; }
   int               RequestLimit(void) const { return(m_request_limit); }
   bool              CanSendRequest(void);
   int               RequestsInLastMinute(void);
   bool              WasRateLimited(void) const { return(m_rate_limited); }
   void              Execute(const SCommand &c,SResultInfo &r);
   int               CloseOwnPositions(const string symbol,const bool all_symbols,double &lots,string &failures);
  };

CCommandExecutor::CCommandExecutor(void)
  {
   m_magic=0;
   m_deviation=10;
   m_max_retries=3;
   m_request_limit=0;
   m_rate_limited=false;
  }

void CCommandExecutor::Init(const long magic,const int deviation,const int max_retries)
  {
   m_magic=magic;
   m_deviation=deviation;
   m_max_retries=max_retries;
   m_trade.SetExpertMagicNumber((ulong)magic);
   m_trade.SetDeviationInPoints((ulong)deviation);
   m_trade.SetAsyncMode(false);
   m_trade.SetMarginMode();
   m_trade.LogLevel(LOG_LEVEL_ERRORS);
  }

bool CCommandExecutor::Hedging(void) const
  {
   return(AccountInfoInteger(ACCOUNT_MARGIN_MODE)==ACCOUNT_MARGIN_MODE_RETAIL_HEDGING);
  }

bool CCommandExecutor::CanSendRequest(void)
  {
   return(m_limiter.CanSend(GetTickCount64(),m_request_limit));
  }

int CCommandExecutor::RequestsInLastMinute(void)
  {
   return(m_limiter.InLastMinute(GetTickCount64()));
  }

//--- every request to the server takes a slot of the cap; closing at the equity floor is never held back
bool CCommandExecutor::TakeRequestSlot(const bool exempt)
  {
   ulong now=GetTickCount64();
   if(!exempt && !m_limiter.CanSend(now,m_request_limit))
     {
      m_rate_limited=true;
      return(false);
     }
   m_limiter.Record(now);
   return(true);
  }

void CCommandExecutor::NewJob(STradeJob &job,const int kind,const string symbol,const string comment,const bool exempt)
  {
   job.kind=kind;
   job.symbol=symbol;
   job.order_type=ORDER_TYPE_BUY;
   job.volume=0;
   job.sl=0;
   job.tp=0;
   job.ticket=0;
   job.comment=comment;
   job.exempt=exempt;
   job.opening=(kind==JOB_OPEN);
   job.volume_before=0;
   job.retcode=0;
   job.result_ticket=0;
   job.price=0;
   job.filled=0;
   job.text="";
   job.sl_after=0;
   job.tp_after=0;
  }

//+------------------------------------------------------------------+
//| One request. The result is cleared first; a call that sent       |
//| nothing reports TRADE_RETCODE_ERROR with the terminal's error.   |
//+------------------------------------------------------------------+
void CCommandExecutor::SendOnce(STradeJob &job)
  {
   m_trade.SetTypeFilling(FillingFor(job.symbol));
   m_trade.ClearResult();
   ResetLastError();
   bool sent=false;
   if(job.kind==JOB_OPEN)
     {
      double price=SymbolInfoDouble(job.symbol,SYMBOL_ASK);
      if(job.order_type==ORDER_TYPE_SELL)
         price=SymbolInfoDouble(job.symbol,SYMBOL_BID);
      sent=m_trade.PositionOpen(job.symbol,job.order_type,job.volume,price,job.sl,job.tp,job.comment);
     }
   else if(job.kind==JOB_CLOSE)
      sent=m_trade.PositionClose((ulong)job.ticket,(ulong)m_deviation);
   else if(job.kind==JOB_CLOSE_PART)
     {
      // the request CTrade's PositionClosePartial sends, built here for two reasons: that method
      // refuses netting accounts, and it sets no comment, while "mt5b:<id>" on the closing deal lets
      // the bridge settle a partial close whose answer was lost. Its filling policy is the one CTrade
      // would put on it, so it is refused or accepted exactly as a CTrade close would be.
      ENUM_ORDER_TYPE_FILLING filling=ORDER_FILLING_FOK;
      if(!FillingAsCTrade(SymbolInfoInteger(job.symbol,SYMBOL_TRADE_EXEMODE),
                          SymbolInfoInteger(job.symbol,SYMBOL_FILLING_MODE),FillingFor(job.symbol),filling))
        {
         job.retcode=TRADE_RETCODE_INVALID_FILL;
         job.text=job.symbol+": no filling policy of the symbol fits a market order (not sent)";
         return;
        }
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      request.action=TRADE_ACTION_DEAL;
      request.symbol=job.symbol;
      request.position=(ulong)job.ticket;
      request.volume=job.volume;
      request.magic=(ulong)m_magic;
      request.deviation=(ulong)m_deviation;
      request.type_filling=filling;
      request.comment=job.comment;
      if(job.order_type==ORDER_TYPE_SELL)
        {
         request.type=ORDER_TYPE_SELL;
         request.price=SymbolInfoDouble(job.symbol,SYMBOL_BID);
        }
      else
        {
         request.type=ORDER_TYPE_BUY;
         request.price=SymbolInfoDouble(job.symbol,SYMBOL_ASK);
        }
      sent=m_trade.OrderSend(request,result);
      job.retcode=result.retcode;
      job.text=result.comment;
      job.price=result.price;
      job.filled=result.volume;
      if(!sent && job.retcode==0)
        {
         job.retcode=TRADE_RETCODE_ERROR;
         job.text="request not sent: terminal error "+IntegerToString(GetLastError());
        }
      return;
     }
   else if(job.kind==JOB_MODIFY)
      sent=m_trade.PositionModify((ulong)job.ticket,job.sl,job.tp);
   job.retcode=m_trade.ResultRetcode();
   job.text=m_trade.ResultComment();
   job.price=m_trade.ResultPrice();
   job.filled=m_trade.ResultVolume();
   if(!sent && job.retcode==0)
     {
      job.retcode=TRADE_RETCODE_ERROR;
      job.text="request not sent: terminal error "+IntegerToString(GetLastError());
     }
  }

//--- after a fill: which position, at what price, how many lots (the deal says it best)
void CCommandExecutor::FillDetails(STradeJob &job)
  {
   ulong deal=m_trade.ResultDeal();
   if(job.kind!=JOB_OPEN)
      job.result_ticket=job.ticket;
   if(deal>0 && HistoryDealSelect(deal))
     {
      if(job.kind==JOB_OPEN)
         job.result_ticket=HistoryDealGetInteger(deal,DEAL_POSITION_ID);
      if(job.price<=0)
         job.price=HistoryDealGetDouble(deal,DEAL_PRICE);
      if(job.filled<=0)
         job.filled=HistoryDealGetDouble(deal,DEAL_VOLUME);
     }
   if(job.kind==JOB_OPEN && job.result_ticket<=0)
     {
      if(Hedging())
         job.result_ticket=(long)m_trade.ResultOrder();
      else if(PositionSelect(job.symbol))
         job.result_ticket=PositionGetInteger(POSITION_TICKET);
     }
   if(job.kind==JOB_MODIFY)
     {
      job.price=0;
      job.filled=0;
     }
   StopsAfter(job);
  }

//+------------------------------------------------------------------+
//| The stops the position has now: the broker may have moved one    |
//| (a minimum distance, a different grid), and RESULT reports what  |
//| is in force, not what was asked for. A whole close leaves none.  |
//+------------------------------------------------------------------+
void CCommandExecutor::StopsAfter(STradeJob &job)
  {
   job.sl_after=0;
   job.tp_after=0;
   if(job.kind==JOB_CLOSE)
      return;
   if(job.result_ticket>0 && PositionSelectByTicket((ulong)job.result_ticket))
     {
      job.sl_after=PositionGetDouble(POSITION_SL);
      job.tp_after=PositionGetDouble(POSITION_TP);
      return;
     }
   if(job.kind==JOB_OPEN || job.kind==JOB_MODIFY)
     {
      // not selectable this moment: what was sent, which the server accepted
      job.sl_after=job.sl;
      job.tp_after=job.tp;
     }
  }

//+------------------------------------------------------------------+
//| After a timeout or a lost connection: is the request already     |
//| seen on the account? One look, without waiting (a wait here      |
//| would hold the equity guard up). Seen: done. Not seen: UNKNOWN,  |
//| never sent again - the order may still be filled later, and the  |
//| bridge settles it from the positions and deals with its comment. |
//+------------------------------------------------------------------+
bool CCommandExecutor::SeenOnAccount(STradeJob &job)
  {
   if(job.kind==JOB_OPEN)
     {
      int total=PositionsTotal();
      for(int i=0; i<total; i++)
        {
         ulong ticket=PositionGetTicket(i);
         if(ticket>0 && PositionGetString(POSITION_COMMENT)==job.comment &&
            PositionGetInteger(POSITION_MAGIC)==m_magic)
           {
            job.result_ticket=(long)ticket;
            job.price=PositionGetDouble(POSITION_PRICE_OPEN);
            job.filled=PositionGetDouble(POSITION_VOLUME);
            job.sl_after=PositionGetDouble(POSITION_SL);
            job.tp_after=PositionGetDouble(POSITION_TP);
            return(true);
           }
        }
      // on a netting account an addition keeps the position's first comment: look at the deals
      datetime now=TimeCurrent();
      if(HistorySelect(now-3600,now+3600))
        {
         int deals=HistoryDealsTotal();
         for(int i=deals-1; i>=0; i--)
           {
            ulong deal=HistoryDealGetTicket(i);
            if(deal>0 && HistoryDealGetString(deal,DEAL_COMMENT)==job.comment &&
               HistoryDealGetInteger(deal,DEAL_MAGIC)==m_magic)
              {
               job.result_ticket=HistoryDealGetInteger(deal,DEAL_POSITION_ID);
               job.price=HistoryDealGetDouble(deal,DEAL_PRICE);
               job.filled=HistoryDealGetDouble(deal,DEAL_VOLUME);
               StopsAfter(job);
               return(true);
              }
           }
        }
      return(false);
     }
   if(job.kind==JOB_CLOSE)
     {
      if(!PositionSelectByTicket((ulong)job.ticket))
        {
         job.result_ticket=job.ticket;
         job.filled=job.volume;
         return(true);
        }
      return(false);
     }
   if(job.kind==JOB_CLOSE_PART)
     {
      if(!PositionSelectByTicket((ulong)job.ticket) ||
         PositionGetDouble(POSITION_VOLUME)<=job.volume_before-job.volume+GRID_EPSILON)
        {
         job.result_ticket=job.ticket;
         job.filled=job.volume;
         StopsAfter(job);
         return(true);
        }
      return(false);
     }
   if(job.kind==JOB_MODIFY && PositionSelectByTicket((ulong)job.ticket))
     {
      double tick=SymbolInfoDouble(job.symbol,SYMBOL_TRADE_TICK_SIZE);
      if(MathAbs(PositionGetDouble(POSITION_SL)-job.sl)<tick/2 &&
         MathAbs(PositionGetDouble(POSITION_TP)-job.tp)<tick/2)
        {
         job.result_ticket=job.ticket;
         StopsAfter(job);
         return(true);
        }
     }
   return(false);
  }

//--- before a retry after a requote: the stops are checked again at the new price
bool CCommandExecutor::FreshPrice(STradeJob &job)
  {
   if(job.kind!=JOB_OPEN)
      return(true);
   MqlTick tick;
   if(!SymbolInfoTick(job.symbol,tick))
      return(false);
   bool is_buy=(job.order_type==ORDER_TYPE_BUY);
   double close_price=is_buy ? tick.bid : tick.ask;
   double point=SymbolInfoDouble(job.symbol,SYMBOL_POINT);
   double tick_size=SymbolInfoDouble(job.symbol,SYMBOL_TRADE_TICK_SIZE);
   int digits=(int)SymbolInfoInteger(job.symbol,SYMBOL_DIGITS);
   double distance=MinimumStopDistance(SymbolInfoInteger(job.symbol,SYMBOL_TRADE_STOPS_LEVEL),
                                       SymbolInfoInteger(job.symbol,SYMBOL_TRADE_FREEZE_LEVEL),point);
   if(PlaceStop(job.sl,is_buy,true,close_price,distance,point,tick_size,digits)==STOP_WRONG ||
      PlaceStop(job.tp,is_buy,false,close_price,distance,point,tick_size,digits)==STOP_WRONG)
     {
      job.retcode=TRADE_RETCODE_INVALID_STOPS;
      job.text="after a requote the price has passed the stop loss or take profit: not retried";
      return(false);
     }
   return(true);
  }

//+------------------------------------------------------------------+
//| Sends a job and retries it as RetryKind allows (definite         |
//| refusals only), up to the configured number of retries and       |
//| within the request cap. An unknown outcome is never retried.     |
//| Before every further step the equity guard runs (BetweenSteps);  |
//| an opening job stops there when the guard forbids opening.       |
//+------------------------------------------------------------------+
void CCommandExecutor::Run(STradeJob &job)
  {
   int attempts=0;
   while(true)
     {
      if(!TakeRequestSlot(job.exempt))
        {
         if(attempts==0)
           {
            job.retcode=TRADE_RETCODE_TOO_MANY_REQUESTS;
            job.text="the EA's cap of "+IntegerToString(m_request_limit)+" trade requests a minute is reached";
           }
         else
            job.text=job.text+"; no retry: the cap on trade requests a minute is reached";
         return;
        }
      attempts++;
      SendOnce(job);
      if(IsFilled(job.retcode))
        {
         FillDetails(job);
         return;
        }
      uint first_retcode=job.retcode;
      if(IsOutcomeUnknown(first_retcode))
        {
         if(SeenOnAccount(job))
           {
            job.text="done (seen on the account after "+RetcodeText(first_retcode)+")";
            job.retcode=TRADE_RETCODE_DONE;
            return;
           }
         job.text=job.text+"; outcome unknown: not sent again, the bridge settles it from the account";
         return;
        }
      int retry=RetryKind(first_retcode);
      if(retry==RETRY_NEVER || attempts>m_max_retries || IsStopped())
         return;
      if(!BetweenSteps(job.opening))
        {
         job.text=job.text+"; not sent again: the equity guard forbids opening";
         return;
        }
      if(retry==RETRY_AFTER_PAUSE)
        {
         Sleep(TOO_MANY_REQUESTS_PAUSE_MS);
         if(!BetweenSteps(job.opening))
           {
            job.text=job.text+"; not sent again: the equity guard forbids opening";
            return;
           }
        }
      if(retry==RETRY_FRESH_PRICE && !FreshPrice(job))
         return;
      LogInfo("trade request "+job.comment+" on "+job.symbol+" answered "+RetcodeText(first_retcode)+
              " ("+job.text+"): sending again");
     }
  }

void CCommandExecutor::Refuse(SResultInfo &r,const uint retcode,const string text)
  {
   r.outcome=MT5B_OUTCOME_REFUSED;
   r.retcode=retcode;
   r.ticket=0;
   r.price=0;
   r.volume=0;
   r.sl=0;
   r.tp=0;
   r.text=text;
  }

void CCommandExecutor::FromJob(const STradeJob &job,SResultInfo &r)
  {
   r.outcome=OutcomeOf(job.retcode);
   r.retcode=job.retcode;
   r.ticket=job.result_ticket;
   if(r.ticket<0)
      r.ticket=0;
   r.price=job.price;
   r.volume=job.filled;
   r.sl=job.sl_after;
   r.tp=job.tp_after;
   if(!IsFilled(job.retcode))
     {
      // PLACED, REFUSED, UNKNOWN: nothing known to be filled
      r.price=0;
      r.volume=0;
      r.sl=0;
      r.tp=0;
     }
   if(r.price<0)
      r.price=0;
   if(r.volume<0)
      r.volume=0;
   r.text=job.text;
   if(r.text=="")
      r.text=RetcodeText(job.retcode);
  }

//+------------------------------------------------------------------+
//| OPEN and ADD: a market order on the chart's symbol.              |
//+------------------------------------------------------------------+
void CCommandExecutor::ExecuteOpen(const SCommand &c,SResultInfo &r)
  {
   string symbol=c.symbol;
   ENUM_ORDER_TYPE order_type=ORDER_TYPE_BUY;
   if(!OpeningOrderType(c.side,order_type))
     {
      Refuse(r,TRADE_RETCODE_INVALID,c.action+" with side '"+c.side+"': only BUY or SELL opens a position");
      return;
     }
   bool is_buy=(order_type==ORDER_TYPE_BUY);
   long trade_mode=SymbolInfoInteger(symbol,SYMBOL_TRADE_MODE);
   if(trade_mode==SYMBOL_TRADE_MODE_DISABLED)
     {
      Refuse(r,TRADE_RETCODE_TRADE_DISABLED,symbol+": trading is disabled on the symbol");
      return;
     }
   if(trade_mode==SYMBOL_TRADE_MODE_CLOSEONLY)
     {
      Refuse(r,TRADE_RETCODE_CLOSE_ONLY,symbol+": the symbol allows closing only");
      return;
     }
   if(trade_mode==SYMBOL_TRADE_MODE_LONGONLY && !is_buy)
     {
      Refuse(r,TRADE_RETCODE_LONG_ONLY,symbol+": the symbol allows buying only");
      return;
     }
   if(trade_mode==SYMBOL_TRADE_MODE_SHORTONLY && is_buy)
     {
      Refuse(r,TRADE_RETCODE_SHORT_ONLY,symbol+": the symbol allows selling only");
      return;
     }
   long order_mode=SymbolInfoInteger(symbol,SYMBOL_ORDER_MODE);
   if((c.sl>0 && (order_mode&SYMBOL_ORDER_SL)==0) || (c.tp>0 && (order_mode&SYMBOL_ORDER_TP)==0))
     {
      // CTrade would drop the stop without a word and open an unprotected position
      Refuse(r,TRADE_RETCODE_INVALID_STOPS,symbol+": the symbol takes no stop loss or take profit on orders");
      return;
     }
   if(c.action==MT5B_ACTION_ADD && c.ticket>0)
     {
      if(!PositionSelectByTicket((ulong)c.ticket))
        {
         Refuse(r,TRADE_RETCODE_POSITION_CLOSED,"ADD to #"+IntegerToString(c.ticket)+": the position is no longer open");
         return;
        }
      if(PositionGetString(POSITION_SYMBOL)!=symbol || PositionSideName(PositionGetInteger(POSITION_TYPE))!=c.side)
        {
         Refuse(r,TRADE_RETCODE_INVALID,"ADD to #"+IntegerToString(c.ticket)+": the position is another symbol or side");
         return;
        }
     }
   if(!Hedging() && PositionSelect(symbol) && PositionSideName(PositionGetInteger(POSITION_TYPE))!=c.side)
     {
      // on a netting account this order would shrink or reverse the position, not open one
      Refuse(r,TRADE_RETCODE_HEDGE_PROHIBITED,symbol+": netting account holds the opposite position; send CLOSE");
      return;
     }
   double lots=VolumeForOpen(c.volume,SymbolInfoDouble(symbol,SYMBOL_VOLUME_MIN),
                             SymbolInfoDouble(symbol,SYMBOL_VOLUME_STEP),SymbolInfoDouble(symbol,SYMBOL_VOLUME_MAX));
   if(lots<=0)
     {
      Refuse(r,TRADE_RETCODE_INVALID_VOLUME,DoubleToString(c.volume,8)+" lots is below the symbol's minimum of "+
             DoubleToString(SymbolInfoDouble(symbol,SYMBOL_VOLUME_MIN),8));
      return;
     }
   MqlTick tick;
   if(!SymbolInfoTick(symbol,tick) || tick.bid<=0 || tick.ask<=0)
     {
      Refuse(r,TRADE_RETCODE_PRICE_OFF,symbol+": no quote to trade at");
      return;
     }
   int digits=(int)SymbolInfoInteger(symbol,SYMBOL_DIGITS);
   double point=SymbolInfoDouble(symbol,SYMBOL_POINT);
   double tick_size=SymbolInfoDouble(symbol,SYMBOL_TRADE_TICK_SIZE);
   double distance=MinimumStopDistance(SymbolInfoInteger(symbol,SYMBOL_TRADE_STOPS_LEVEL),
                                       SymbolInfoInteger(symbol,SYMBOL_TRADE_FREEZE_LEVEL),point);
   double close_price=is_buy ? tick.bid : tick.ask;
   double sl=PriceOnGrid(c.sl,tick_size,digits);
   double tp=PriceOnGrid(c.tp,tick_size,digits);
   string notes="";
   int sl_check=PlaceStop(sl,is_buy,true,close_price,distance,point,tick_size,digits);
   int tp_check=PlaceStop(tp,is_buy,false,close_price,distance,point,tick_size,digits);
   if(sl_check==STOP_WRONG || tp_check==STOP_WRONG)
     {
      Refuse(r,TRADE_RETCODE_INVALID_STOPS,"stop loss "+DoubleToString(sl,digits)+" or take profit "+
             DoubleToString(tp,digits)+" is on the wrong side of the price "+DoubleToString(close_price,digits));
      return;
     }
   if(sl_check==STOP_MOVED)
      notes=notes+"; stop loss moved to "+DoubleToString(sl,digits)+" (broker's minimum distance)";
   if(tp_check==STOP_MOVED)
      notes=notes+"; take profit moved to "+DoubleToString(tp,digits)+" (broker's minimum distance)";
   if(lots<c.volume-GRID_EPSILON)
      notes=notes+"; volume "+DoubleToString(lots,8)+" of "+DoubleToString(c.volume,8)+" asked (step or maximum)";
   STradeJob job;
   NewJob(job,JOB_OPEN,symbol,CommandComment(c.command_id),false);
   job.order_type=order_type;
   job.volume=lots;
   job.sl=sl;
   job.tp=tp;
   Run(job);
   FromJob(job,r);
   r.text=r.text+notes;
  }

//+------------------------------------------------------------------+
//| CLOSE: the whole position, or a part of it rounded down to the   |
//| volume step.                                                     |
//+------------------------------------------------------------------+
void CCommandExecutor::ExecuteClose(const SCommand &c,SResultInfo &r)
  {
   if(!PositionSelectByTicket((ulong)c.ticket))
     {
      Refuse(r,TRADE_RETCODE_POSITION_CLOSED,"position #"+IntegerToString(c.ticket)+" is not open");
      return;
     }
   string symbol=PositionGetString(POSITION_SYMBOL);
   if(symbol!=c.symbol)
     {
      Refuse(r,TRADE_RETCODE_INVALID,"position #"+IntegerToString(c.ticket)+" is on "+symbol+", not "+c.symbol);
      return;
     }
   double position_volume=PositionGetDouble(POSITION_VOLUME);
   bool is_buy=(PositionGetInteger(POSITION_TYPE)==POSITION_TYPE_BUY);
   double lots=VolumeToClose(c.volume,position_volume,SymbolInfoDouble(symbol,SYMBOL_VOLUME_MIN),
                             SymbolInfoDouble(symbol,SYMBOL_VOLUME_STEP));
   if(lots<=0)
     {
      Refuse(r,TRADE_RETCODE_INVALID_VOLUME,"cannot close "+DoubleToString(c.volume,8)+" of "+
             DoubleToString(position_volume,8)+" lots: the step or the minimum left open forbids it");
      return;
     }
   STradeJob job;
   bool partial=(lots<position_volume-GRID_EPSILON);
   NewJob(job,partial ? JOB_CLOSE_PART : JOB_CLOSE,symbol,CommandComment(c.command_id),false);
   job.ticket=c.ticket;
   job.volume=lots;
   job.volume_before=position_volume;
   // the closing order goes the other way
   job.order_type=is_buy ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
   Run(job);
   FromJob(job,r);
  }

//+------------------------------------------------------------------+
//| MODIFY: a position's stop loss and take profit (0 removes one).  |
//+------------------------------------------------------------------+
void CCommandExecutor::ExecuteModify(const SCommand &c,SResultInfo &r)
  {
   if(!PositionSelectByTicket((ulong)c.ticket))
     {
      Refuse(r,TRADE_RETCODE_POSITION_CLOSED,"position #"+IntegerToString(c.ticket)+" is not open");
      return;
     }
   string symbol=PositionGetString(POSITION_SYMBOL);
   if(symbol!=c.symbol)
     {
      Refuse(r,TRADE_RETCODE_INVALID,"position #"+IntegerToString(c.ticket)+" is on "+symbol+", not "+c.symbol);
      return;
     }
   bool is_buy=(PositionGetInteger(POSITION_TYPE)==POSITION_TYPE_BUY);
   double old_sl=PositionGetDouble(POSITION_SL);
   double old_tp=PositionGetDouble(POSITION_TP);
   int digits=(int)SymbolInfoInteger(symbol,SYMBOL_DIGITS);
   double point=SymbolInfoDouble(symbol,SYMBOL_POINT);
   double tick_size=SymbolInfoDouble(symbol,SYMBOL_TRADE_TICK_SIZE);
   double sl=PriceOnGrid(c.sl,tick_size,digits);
   double tp=PriceOnGrid(c.tp,tick_size,digits);
   if(MathAbs(sl-old_sl)<tick_size/2 && MathAbs(tp-old_tp)<tick_size/2)
     {
      Refuse(r,TRADE_RETCODE_NO_CHANGES,"position #"+IntegerToString(c.ticket)+" already has these stops");
      r.ticket=c.ticket;
      return;
     }
   MqlTick tick;
   if(!SymbolInfoTick(symbol,tick) || tick.bid<=0 || tick.ask<=0)
     {
      Refuse(r,TRADE_RETCODE_PRICE_OFF,symbol+": no quote to check the stops against");
      return;
     }
   double close_price=is_buy ? tick.bid : tick.ask;
   double freeze=SymbolInfoInteger(symbol,SYMBOL_TRADE_FREEZE_LEVEL)*point;
   if(freeze>0 && ((old_sl>0 && MathAbs(close_price-old_sl)<=freeze) || (old_tp>0 && MathAbs(close_price-old_tp)<=freeze)))
     {
      Refuse(r,TRADE_RETCODE_FROZEN,"position #"+IntegerToString(c.ticket)+": the price is within the freeze level of a stop");
      return;
     }
   double distance=MinimumStopDistance(SymbolInfoInteger(symbol,SYMBOL_TRADE_STOPS_LEVEL),
                                       SymbolInfoInteger(symbol,SYMBOL_TRADE_FREEZE_LEVEL),point);
   string notes="";
   int sl_check=PlaceStop(sl,is_buy,true,close_price,distance,point,tick_size,digits);
   int tp_check=PlaceStop(tp,is_buy,false,close_price,distance,point,tick_size,digits);
   if(sl_check==STOP_WRONG || tp_check==STOP_WRONG)
     {
      Refuse(r,TRADE_RETCODE_INVALID_STOPS,"position #"+IntegerToString(c.ticket)+": stop loss "+
             DoubleToString(sl,digits)+" or take profit "+DoubleToString(tp,digits)+
             " is on the wrong side of the price "+DoubleToString(close_price,digits));
      return;
     }
   if(sl_check==STOP_MOVED)
      notes=notes+"; stop loss moved to "+DoubleToString(sl,digits)+" (broker's minimum distance)";
   if(tp_check==STOP_MOVED)
      notes=notes+"; take profit moved to "+DoubleToString(tp,digits)+" (broker's minimum distance)";
   STradeJob job;
   NewJob(job,JOB_MODIFY,symbol,CommandComment(c.command_id),false);
   job.ticket=c.ticket;
   job.sl=sl;
   job.tp=tp;
   Run(job);
   FromJob(job,r);
   r.text=r.text+notes;
  }

//--- a whole position closed by ticket, retried as any job
bool CCommandExecutor::CloseTicket(const long ticket,const string comment,const bool exempt,STradeJob &job)
  {
   if(!PositionSelectByTicket((ulong)ticket))
      return(false);
   NewJob(job,JOB_CLOSE,PositionGetString(POSITION_SYMBOL),comment,exempt);
   job.ticket=ticket;
   job.volume=PositionGetDouble(POSITION_VOLUME);
   Run(job);
   return(IsFilled(job.retcode));
  }

//+------------------------------------------------------------------+
//| CLOSE_ALL: every position of the account, whoever opened it (the |
//| bridge's flatten of a halted account). The command takes one     |
//| slot of the request cap; once started it closes everything.      |
//+------------------------------------------------------------------+
void CCommandExecutor::ExecuteCloseAll(const SCommand &c,SResultInfo &r)
  {
   if(!TakeRequestSlot(false))
     {
      Refuse(r,TRADE_RETCODE_TOO_MANY_REQUESTS,"the EA's cap of "+IntegerToString(m_request_limit)+
             " trade requests a minute is reached");
      return;
     }
   long tickets[];
   int total=PositionsTotal();
   ArrayResize(tickets,total);
   int n=0;
   for(int i=0; i<total; i++)
     {
      ulong ticket=PositionGetTicket(i);
      if(ticket>0)
        {
         tickets[n]=(long)ticket;
         n++;
        }
     }
   int closed=0;
   double lots=0;
   uint failed_retcode=0;
   string failures="";
   string comment=CommandComment(c.command_id);
   bool unknown=false;
   for(int i=0; i<n; i++)
     {
      STradeJob job;
      // each close is a blocking request: the guard runs between them
      if(i>0)
         BetweenSteps(false);
      if(!PositionSelectByTicket((ulong)tickets[i]))
         continue;     // closed meanwhile (its stop, another chart, the guard)
      if(CloseTicket(tickets[i],comment,true,job))
        {
         closed++;
         lots+=job.filled;
        }
      else if(PositionSelectByTicket((ulong)tickets[i]))
        {
         failed_retcode=job.retcode;
         if(IsOutcomeUnknown(job.retcode))
            unknown=true;
         failures=failures+"; #"+IntegerToString(tickets[i])+": "+job.text;
        }
     }
   r.retcode=(failed_retcode==0) ? TRADE_RETCODE_DONE : failed_retcode;
   // DONE: all closed; UNKNOWN: a close whose answer was lost; PARTIAL: some closed; REFUSED: none
   if(failed_retcode==0)
      r.outcome=MT5B_OUTCOME_DONE;
   else if(unknown)
      r.outcome=MT5B_OUTCOME_UNKNOWN;
   else if(closed>0)
      r.outcome=MT5B_OUTCOME_PARTIAL;
   else
      r.outcome=MT5B_OUTCOME_REFUSED;
   r.ticket=0;
   r.price=0;
   r.volume=NormalizeDouble(lots,8);
   r.sl=0;
   r.tp=0;
   r.text="closed "+IntegerToString(closed)+" of "+IntegerToString(n)+" positions"+failures;
  }

//+------------------------------------------------------------------+
//| Carries out one non-HOLD command that has passed the EA's own    |
//| checks (duplicates, equity floor, request cap, symbol).          |
//+------------------------------------------------------------------+
void CCommandExecutor::Execute(const SCommand &c,SResultInfo &r)
  {
   m_rate_limited=false;
   r.command_id=c.command_id;
   r.digits=(int)SymbolInfoInteger(c.symbol,SYMBOL_DIGITS);
   if(c.action==MT5B_ACTION_OPEN || c.action==MT5B_ACTION_ADD)
      ExecuteOpen(c,r);
   else if(c.action==MT5B_ACTION_CLOSE)
      ExecuteClose(c,r);
   else if(c.action==MT5B_ACTION_MODIFY)
      ExecuteModify(c,r);
   else if(c.action==MT5B_ACTION_CLOSE_ALL)
      ExecuteCloseAll(c,r);
   else
      Refuse(r,TRADE_RETCODE_INVALID,"nothing to execute for "+c.action);
   r.time_msc=ServerTimeMsc();
  }

//+------------------------------------------------------------------+
//| The equity guard: closes this EA's positions (its magic) on the  |
//| given symbol, or on every symbol. Never held back by the request |
//| cap. Returns how many were closed; lots and failures for the log.|
//+------------------------------------------------------------------+
int CCommandExecutor::CloseOwnPositions(const string symbol,const bool all_symbols,double &lots,string &failures)
  {
   long tickets[];
   int total=PositionsTotal();
   ArrayResize(tickets,total);
   int n=0;
   for(int i=0; i<total; i++)
     {
      ulong ticket=PositionGetTicket(i);
      if(ticket==0 || PositionGetInteger(POSITION_MAGIC)!=m_magic)
         continue;
      if(!all_symbols && PositionGetString(POSITION_SYMBOL)!=symbol)
         continue;
      tickets[n]=(long)ticket;
      n++;
     }
   int closed=0;
   lots=0;
   failures="";
   for(int i=0; i<n; i++)
     {
      STradeJob job;
      if(CloseTicket(tickets[i],"mt5b:equity guard",true,job))
        {
         closed++;
         lots+=job.filled;
        }
      else if(PositionSelectByTicket((ulong)tickets[i]))
         failures=failures+"; #"+IntegerToString(tickets[i])+": "+job.text;
     }
   return(closed);
  }

#endif // MT5B_EXECUTION_MQH
