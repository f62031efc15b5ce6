//+------------------------------------------------------------------+
//| MT5Bridge/EquityGuard.mqh                                        |
//| The last line of defence of FTMO's loss limits, kept by the EA   |
//| itself so it holds when the bridge is gone. The floor is the     |
//| highest of                                                       |
//|  - the daily one: balance at the last Prague midnight minus the  |
//|    daily limit less a buffer, both in % of the initial balance   |
//|    (of the midnight balance when the trader did not give one);   |
//|  - the overall one: the initial balance less the maximum loss    |
//|    less the buffer (only when the initial balance is given);     |
//|  - the floor the bridge handed over in WELCOME, for the Prague   |
//|    day it came in: the bridge's daily floor moves at midnight,   |
//|    and a new one comes only with the next WELCOME.              |
//| At or below it the EA opens nothing new and closes its own       |
//| positions; it stays tripped until the next Prague midnight.      |
//+------------------------------------------------------------------+
#ifndef MT5B_EQUITY_GUARD_MQH
#define MT5B_EQUITY_GUARD_MQH

#include "PragueClock.mqh"
#include "Terminal.mqh"

class CEquityGuard
  {
private:
   bool              m_enabled;            // the EA's own floor (the trader may switch it off)
   double            m_initial_balance;    // 0 = not given
   double            m_daily_loss_pct;
   double            m_buffer_pct;
   double            m_max_loss_pct;       // 0 = no overall floor
   double            m_bridge_floor;
   long              m_bridge_welcome;     // which WELCOME the bridge's floor came with
   long              m_bridge_day;         // and on which Prague day
   long              m_day_key;
   double            m_midnight_balance;
   bool              m_balance_known;
   long              m_tripped_day;        // Prague day the guard acted on; -1 = not tripped
   ulong             m_tripped_at_ms;

public:
                     CEquityGuard(void);
   void              Configure(const bool enabled,const double initial_balance,const double daily_loss_pct,
                               const double max_loss_pct,const double buffer_pct);
   void              SetBridgeFloor(const double equity_floor,const long welcome_count);
   double            BridgeFloor(void) const;
   bool              Refresh(const datetime utc_now,const long server_utc_offset_s);
   double            OwnFloor(void) const;
   double            Floor(void) const;
   double            MidnightBalance(void) const { return(m_midnight_balance); }
   bool              BalanceKnown(void) const { return(m_balance_known); }
   bool              IsTripped(void) const { return(m_tripped_day>=0 && m_tripped_day==m_day_key); }
   void              Trip(const ulong now_ms) { m_tripped_day=m_day_key; m_tripped_at_ms=now_ms; }
   ulong             TrippedAtMs(void) const { return(m_tripped_at_ms); }
   bool              OpensAllowed(const double equity,string &why) const;
   void              Reset(const bool keep_trip);
  };

//+------------------------------------------------------------------+
//| Re-initialisation (other inputs, symbol or account): the         |
//| midnight balance is worked out again and the bridge's floor      |
//| waits for the next WELCOME. The guard's trip stays for the same  |
//| account's day; another account starts untripped.                 |
//+------------------------------------------------------------------+
void CEquityGuard::Reset(const bool keep_trip)
  {
   m_bridge_floor=0;
   m_bridge_welcome=0;
   m_bridge_day=-1;
   m_midnight_balance=0;
   m_balance_known=false;
   // the trip is kept by its Prague day: it holds again once Refresh finds the same day
   m_day_key=-1;
   if(!keep_trip)
     {
      m_tripped_day=-1;
      m_tripped_at_ms=0;
     }
  }

CEquityGuard::CEquityGuard(void)
  {
   m_enabled=true;
   m_initial_balance=0;
   m_daily_loss_pct=5.0;
   m_buffer_pct=0.5;
   m_max_loss_pct=10.0;
   m_bridge_floor=0;
   m_bridge_welcome=0;
   m_bridge_day=-1;
   m_day_key=-1;
   m_midnight_balance=0;
   m_balance_known=false;
   m_tripped_day=-1;
   m_tripped_at_ms=0;
  }

void CEquityGuard::Configure(const bool enabled,const double initial_balance,const double daily_loss_pct,
                             const double max_loss_pct,const double buffer_pct)
  {
   m_enabled=enabled;
   m_initial_balance=initial_balance;
   m_daily_loss_pct=daily_loss_pct;
   m_max_loss_pct=max_loss_pct;
   m_buffer_pct=buffer_pct;
  }

//--- the floor of a new WELCOME (counted by the session) belongs to the Prague day it arrived on
void CEquityGuard::SetBridgeFloor(const double equity_floor,const long welcome_count)
  {
   if(welcome_count==m_bridge_welcome)
      return;
   m_bridge_welcome=welcome_count;
   m_bridge_floor=equity_floor;
   m_bridge_day=m_day_key;
  }

double CEquityGuard::BridgeFloor(void) const
  {
   if(m_bridge_day!=m_day_key)
      return(0);
   return(m_bridge_floor);
  }

//+------------------------------------------------------------------+
//| On a new Prague day (and until it is known) the balance at       |
//| midnight is worked out again from the deal history. Returns true |
//| when a new day began.                                            |
//+------------------------------------------------------------------+
bool CEquityGuard::Refresh(const datetime utc_now,const long server_utc_offset_s)
  {
   long day=PragueDayKey(utc_now);
   bool new_day=(day!=m_day_key);
   if(!new_day && m_balance_known)
      return(false);
   m_day_key=day;
   double balance=0;
   if(BalanceAtUtc(PragueMidnightUtc(utc_now),server_utc_offset_s,balance))
     {
      m_midnight_balance=balance;
      m_balance_known=true;
     }
   else if(new_day)
     {
      // no history now: today's balance until the history answers (retried on the next call)
      m_midnight_balance=AccountInfoDouble(ACCOUNT_BALANCE);
      m_balance_known=false;
     }
   return(new_day);
  }

double CEquityGuard::OwnFloor(void) const
  {
   if(!m_enabled || m_midnight_balance<=0)
      return(0);
   double base=m_initial_balance;
   if(base<=0)
      base=m_midnight_balance;
   double daily_pct=m_daily_loss_pct-m_buffer_pct;
   if(daily_pct<0)
      daily_pct=0;
   double own=m_midnight_balance-daily_pct/100.0*base;
   if(m_initial_balance>0 && m_max_loss_pct>0)
     {
      double overall_pct=m_max_loss_pct-m_buffer_pct;
      if(overall_pct<0)
         overall_pct=0;
      double overall=m_initial_balance*(1.0-overall_pct/100.0);
      if(overall>own)
         own=overall;
     }
   return(own);
  }

double CEquityGuard::Floor(void) const
  {
   double equity_floor=OwnFloor();
   double bridge=BridgeFloor();
   if(bridge>equity_floor)
      equity_floor=bridge;
   return(equity_floor);
  }

bool CEquityGuard::OpensAllowed(const double equity,string &why) const
  {
   if(IsTripped())
     {
      why="the equity guard closed this EA's positions today: it opens nothing new until Prague midnight";
      return(false);
     }
   double equity_floor=Floor();
   if(equity_floor>0 && equity<=equity_floor)
     {
      why="equity "+DoubleToString(equity,2)+" at or below the equity floor "+DoubleToString(equity_floor,2)+
          ": the EA opens nothing new";
      return(false);
     }
   return(true);
  }

#endif // MT5B_EQUITY_GUARD_MQH
