//+------------------------------------------------------------------+
//| MT5Bridge/DealResend.mqh                                         |
//| Which deals go to the bridge again after a WELCOME. The bridge   |
//| settles closed trades and fills from DEALs, and a DEAL can be    |
//| lost while it restarts: the frames a dying connection held, and  |
//| those a restarted bridge refuses as NOT_INTRODUCED before the    |
//| chart is introduced again. So after every WELCOME the chart      |
//| sends its symbol's deals again from the account history, from a  |
//| point the bridge is known to have everything before. The bridge  |
//| ignores a deal it already has, so sending one twice is harmless; |
//| the window is bounded in time and count, so a reconnect cannot   |
//| flood it. Kept apart from the terminal so the harness runs it.   |
//+------------------------------------------------------------------+
#ifndef MT5B_DEAL_RESEND_MQH
#define MT5B_DEAL_RESEND_MQH

//--- before the trusted point too: a deal can reach the history a little after its own time
#define RESEND_MARGIN_MS       300000
//--- never further back than this (a first start, or a bridge down for long)
#define RESEND_MAX_HOURS       72
//--- at most this many deals per WELCOME, the newest
#define RESEND_MAX_DEALS       2000
//--- deals read from the history and queued per timer event, so the equity guard runs between steps
#define RESEND_DEALS_PER_STEP  50

//+------------------------------------------------------------------+
//| Server time (ms) the re-send starts from: the trusted point less |
//| the margin, but never more than RESEND_MAX_HOURS back. A trusted |
//| point of 0 (nothing known yet) starts at the oldest allowed.     |
//+------------------------------------------------------------------+
long ResendFromMsc(const long trusted_msc,const long now_msc)
  {
   long oldest=now_msc-(long)RESEND_MAX_HOURS*3600*1000;
   if(trusted_msc<=0)
      return(oldest);
   long from=trusted_msc-RESEND_MARGIN_MS;
   if(from<oldest)
      return(oldest);
   return(from);
  }

//+------------------------------------------------------------------+
//| Of count deals stamped times[] (in the history's order, oldest   |
//| first), the indices of those at or after from_msc; when there    |
//| are more than limit, the last limit of them (the newest, which a |
//| restart most likely lost). Returns how many were picked.         |
//+------------------------------------------------------------------+
int PickDealsToResend(const long &times[],const int count,const long from_msc,const int limit,int &picked[])
  {
   ArrayResize(picked,0,64);
   if(limit<=0)
      return(0);
   int n=0;
   for(int i=0; i<count; i++)
     {
      if(times[i]<from_msc)
         continue;
      ArrayResize(picked,n+1,64);
      picked[n]=i;
      n++;
     }
   if(n<=limit)
      return(n);
   int skip=n-limit;
   for(int k=0; k<limit; k++)
      picked[k]=picked[k+skip];
   ArrayResize(picked,limit,64);
   return(limit);
  }

#endif // MT5B_DEAL_RESEND_MQH
