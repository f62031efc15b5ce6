//+------------------------------------------------------------------+
//| MT5Bridge/TradeMath.mqh                                          |
//| The arithmetic of an order, kept apart from the terminal so it   |
//| is easy to read and to check: volumes on the symbol's grid,      |
//| stops outside the broker's minimum distance, which server        |
//| answers may be retried, and the cap on requests per minute.      |
//+------------------------------------------------------------------+
#ifndef MT5B_TRADE_MATH_MQH
#define MT5B_TRADE_MATH_MQH

#include "Protocol.mqh"

//--- a volume or price is on the grid when within this fraction of a step of it (binary fractions)
#define GRID_EPSILON  1e-7

//+------------------------------------------------------------------+
//| Lots rounded down to the volume step: never more than asked.     |
//+------------------------------------------------------------------+
double VolumeDown(const double volume,const double step)
  {
   if(step<=0)
      return(volume);
   double steps=MathFloor(volume/step+GRID_EPSILON);
   return(NormalizeDouble(steps*step,8));
  }

//+------------------------------------------------------------------+
//| Lots for a new position: down to the step, capped at the         |
//| maximum; 0 when below the minimum (the order cannot be placed).  |
//+------------------------------------------------------------------+
double VolumeForOpen(const double volume,const double volume_min,const double volume_step,const double volume_max)
  {
   double lots=VolumeDown(volume,volume_step);
   if(volume_max>0 && lots>volume_max)
      lots=VolumeDown(volume_max,volume_step);
   if(lots<volume_min-GRID_EPSILON*volume_step)
      return(0);
   return(lots);
  }

//+------------------------------------------------------------------+
//| Lots to close of a position holding position_volume: all of it   |
//| for 0 or at least the whole; else the part rounded down to the   |
//| step. 0 when that part is nothing or would leave less than the   |
//| minimum open (the server would refuse the rest).                 |
//+------------------------------------------------------------------+
double VolumeToClose(const double requested,const double position_volume,const double volume_min,
                     const double volume_step)
  {
   if(requested<=0 || requested>=position_volume-GRID_EPSILON*volume_step)
      return(position_volume);
   double part=VolumeDown(requested,volume_step);
   if(part<=0)
      return(0);
   if(position_volume-part<volume_min-GRID_EPSILON*volume_step)
      return(0);
   return(part);
  }

//--- a price on the symbol's tick grid, at its digits
double PriceOnGrid(const double price,const double tick_size,const int digits)
  {
   if(price<=0)
      return(0);
   if(tick_size<=0)
      return(NormalizeDouble(price,digits));
   return(NormalizeDouble(MathRound(price/tick_size)*tick_size,digits));
  }

//--- the broker's minimum distance of a stop or target from the price, in price units
double MinimumStopDistance(const long stops_level,const long freeze_level,const double point)
  {
   long level=stops_level;
   if(freeze_level>level)
      level=freeze_level;
   return(level*point);
  }

//--- what PlaceStop did to a stop or target
#define STOP_OK        0
#define STOP_MOVED     1
#define STOP_WRONG     2

//+------------------------------------------------------------------+
//| Checks one stop loss or take profit of a position against the    |
//| price it closes at (the bid for a buy, the ask for a sell).      |
//| is_buy: the position's direction; is_stop: stop loss (true) or   |
//| take profit (false). A level on the wrong side of the price is   |
//| STOP_WRONG (the server would refuse it, or hit it at once). One  |
//| on the right side but inside the minimum distance is moved out   |
//| to it plus one point (STOP_MOVED), as the server requires        |
//| strictly more than the stops level. 0 (none) is always STOP_OK.  |
//+------------------------------------------------------------------+
int PlaceStop(double &level,const bool is_buy,const bool is_stop,const double close_price,
              const double min_distance,const double point,const double tick_size,const int digits)
  {
   if(level<=0)
     {
      level=0;
      return(STOP_OK);
     }
   // +1 where the level must lie above the price, -1 where below
   double direction=1;
   if(is_buy==is_stop)
      direction=-1;
   double distance=(level-close_price)*direction;
   if(distance<=point/2)
      return(STOP_WRONG);
   if(min_distance>0 && distance<=min_distance)
     {
      double grid=tick_size;
      if(grid<=0)
         grid=point;
      double wanted=close_price+direction*(min_distance+point);
      // onto the tick grid, rounding away from the price so the distance only grows
      double steps=MathCeil(MathAbs(wanted-close_price)/grid-GRID_EPSILON);
      level=NormalizeDouble(close_price+direction*steps*grid,digits);
      return(STOP_MOVED);
     }
   return(STOP_OK);
  }

//--- what to do after a server answer
#define RETRY_NEVER        0   // done, refused for good, or unknown: never sent again
#define RETRY_FRESH_PRICE  1   // the price moved: ask again at the new one
#define RETRY_AFTER_PAUSE  2   // the server is busy: ask again after a pause

//--- the pause before a retry after "too many requests"
#define TOO_MANY_REQUESTS_PAUSE_MS  500

//+------------------------------------------------------------------+
//| Retry policy by trade server return code. Only a definite        |
//| refusal, after which nothing was done, may be sent again:        |
//| requote, price changed and off quotes at a fresh price, too many |
//| requests after a pause. A timeout or a lost connection leaves    |
//| the order possibly placed: it is never sent again (its outcome   |
//| is UNKNOWN and the bridge settles it from the account). Invalid  |
//| volume or stops, no money, market closed, trading disabled, bad  |
//| filling and everything else are never retried either.           |
//+------------------------------------------------------------------+
int RetryKind(const uint retcode)
  {
   if(retcode==TRADE_RETCODE_REQUOTE || retcode==TRADE_RETCODE_PRICE_CHANGED || retcode==TRADE_RETCODE_PRICE_OFF)
      return(RETRY_FRESH_PRICE);
   if(retcode==TRADE_RETCODE_TOO_MANY_REQUESTS)
      return(RETRY_AFTER_PAUSE);
   return(RETRY_NEVER);
  }

//--- the server carried the request out, in full or in part (PLACED is an order taken, not a fill)
bool IsFilled(const uint retcode)
  {
   return(retcode==TRADE_RETCODE_DONE || retcode==TRADE_RETCODE_DONE_PARTIAL);
  }

//--- the answer says nothing about what happened: the order may still be filled
bool IsOutcomeUnknown(const uint retcode)
  {
   return(retcode==TRADE_RETCODE_TIMEOUT || retcode==TRADE_RETCODE_CONNECTION);
  }

//+------------------------------------------------------------------+
//| RESULT.outcome of a server answer: DONE, PARTIAL, PLACED (an     |
//| order the server holds, not a fill), UNKNOWN (timeout, lost      |
//| connection) or REFUSED (everything else: nothing was done).      |
//+------------------------------------------------------------------+
string OutcomeOf(const uint retcode)
  {
   if(retcode==TRADE_RETCODE_DONE)
      return(MT5B_OUTCOME_DONE);
   if(retcode==TRADE_RETCODE_DONE_PARTIAL)
      return(MT5B_OUTCOME_PARTIAL);
   if(retcode==TRADE_RETCODE_PLACED)
      return(MT5B_OUTCOME_PLACED);
   if(IsOutcomeUnknown(retcode))
      return(MT5B_OUTCOME_UNKNOWN);
   return(MT5B_OUTCOME_REFUSED);
  }

//+------------------------------------------------------------------+
//| The order type of an OPEN or ADD: BUY or SELL and nothing else.  |
//| false for any other side, "" included: a direction nobody        |
//| decided is never traded.                                         |
//+------------------------------------------------------------------+
bool OpeningOrderType(const string side,ENUM_ORDER_TYPE &order_type)
  {
   if(side==MT5B_SIDE_BUY)
     {
      order_type=ORDER_TYPE_BUY;
      return(true);
     }
   if(side==MT5B_SIDE_SELL)
     {
      order_type=ORDER_TYPE_SELL;
      return(true);
     }
   return(false);
  }

//+------------------------------------------------------------------+
//| The filling policy CTrade puts on a market order (its            |
//| FillingCheck): under request or instant execution the server     |
//| fills in its own (FOK is sent); under market execution the one   |
//| asked for if the symbol allows it, else none (INVALID_FILL);     |
//| under exchange execution FOK or IOC if allowed, RETURN always.   |
//| `wanted` is FillingFor's choice. false: CTrade would not send.   |
//+------------------------------------------------------------------+
bool FillingAsCTrade(const long execution,const long filling_modes,const ENUM_ORDER_TYPE_FILLING wanted,
                     ENUM_ORDER_TYPE_FILLING &filling)
  {
   filling=wanted;
   if(execution==SYMBOL_TRADE_EXECUTION_REQUEST || execution==SYMBOL_TRADE_EXECUTION_INSTANT)
     {
      filling=ORDER_FILLING_FOK;
      return(true);
     }
   bool fok=((filling_modes&SYMBOL_FILLING_FOK)!=0);
   bool ioc=((filling_modes&SYMBOL_FILLING_IOC)!=0);
   if(execution==SYMBOL_TRADE_EXECUTION_MARKET)
      return((wanted==ORDER_FILLING_FOK && fok) || (wanted==ORDER_FILLING_IOC && ioc));
   if(wanted==ORDER_FILLING_FOK)
      return(fok);
   if(wanted==ORDER_FILLING_IOC)
      return(ioc);
   return(true);
  }

//+------------------------------------------------------------------+
//| At most `limit` trade requests in any sliding minute. Times are  |
//| milliseconds from a monotonic clock (GetTickCount64 in the EA).  |
//+------------------------------------------------------------------+
class CRateLimiter
  {
private:
   ulong             m_times[];
   int               m_count;

   void              Forget(const ulong now_ms);

public:
                     CRateLimiter(void) { m_count=0; }
   bool              CanSend(const ulong now_ms,const int limit);
   void              Record(const ulong now_ms);
   int               InLastMinute(const ulong now_ms);
  };

//--- drop requests older than a minute
void CRateLimiter::Forget(const ulong now_ms)
  {
   int keep=0;
   for(int i=0; i<m_count; i++)
      if(m_times[i]+60000>now_ms)
        {
         m_times[keep]=m_times[i];
         keep++;
        }
   m_count=keep;
  }

bool CRateLimiter::CanSend(const ulong now_ms,const int limit)
  {
   Forget(now_ms);
   return(limit<=0 || m_count<limit);
  }

void CRateLimiter::Record(const ulong now_ms)
  {
   Forget(now_ms);
   ArrayResize(m_times,m_count+1,64);
   m_times[m_count]=now_ms;
   m_count++;
  }

int CRateLimiter::InLastMinute(const ulong now_ms)
  {
   Forget(now_ms);
   return(m_count);
  }

#endif // MT5B_TRADE_MATH_MQH
